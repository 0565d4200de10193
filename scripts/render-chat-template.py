#!/usr/bin/env python3
"""Renders a chat template (Jinja) as Hugging Face's apply_chat_template does, for reference prompts in tests.

Usage: render-chat-template.py TEMPLATE.jinja MESSAGES_JSON BOS_TOKEN EOS_TOKEN [TOOLS_JSON [VARIABLES_JSON]]
Prints the prompt (add_generation_prompt true) as a JSON string; VARIABLES_JSON, an object, gives the template more
variables (a request's chat_template_kwargs: {"enable_thinking": false}). jinja2 with transformers' settings: trim_blocks,
lstrip_blocks, loop controls, raise_exception, tojson without ASCII escapes, strftime_now fixed to 2026-12-06.
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
import jinja2.nodes


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


class Generation(jinja2.ext.Extension):
    """transformers' {% generation %} block (its AssistantTracker marks the assistant's text): renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.Scope(body, lineno=lineno)


def environment():
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols", Generation])
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda f: datetime.datetime(2026, 12, 6).strftime(f)
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, indent=indent, ensure_ascii=ensure_ascii, separators=separators, sort_keys=sort_keys)
    return env


if __name__ == "__main__":
    template = environment().from_string(open(sys.argv[1], encoding="utf-8").read())
    tools = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
    variables = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    print(json.dumps(template.render(messages=json.loads(sys.argv[2]), add_generation_prompt=True,
                                     bos_token=sys.argv[3], eos_token=sys.argv[4], tools=tools, **variables), ensure_ascii=False))
