#!/usr/bin/env python3
"""Renders chat templates over a set of conversations with jinja2, as render-chat-template.py does, for JinjaTest.

Usage: chat-template-renderings.py OUT.json TEMPLATE.jinja...
Writes a list of {"template", "case", "expected"} (or "error" where jinja2 raises), the template's file name only.
"""
import importlib.util
import json
import os
import sys

spec = importlib.util.spec_from_file_location("render", os.path.join(os.path.dirname(__file__), "render-chat-template.py"))
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city, now.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city's name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}]

CASES = {
    "one message": {"messages": [{"role": "user", "content": "Hello!"}]},
    "conversation": {"messages": [
        {"role": "system", "content": "You are a pirate. Answer in one line."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Arr, ahoy there, matey."},
        {"role": "user", "content": " Where is the treasure?\n"}]},
    "no generation prompt": {"add_generation_prompt": False, "messages": [
        {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
    "thinking": {"messages": [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "<think>\nRayleigh.\n</think>\n\nBecause of Rayleigh scattering."},
        {"role": "user", "content": "And sunsets? \u00e9\u00e8 \U0001F600"}]},
    "tools": {"tools": TOOLS, "messages": [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": "How warm is it in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "a1b2c3d4e", "type": "function", "function": {
            "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "a1b2c3d4e", "name": "get_weather", "content": "{\"temperature\": 22.5}"}]},
    "calls as text": {"tools": TOOLS, "messages": [
        {"role": "user", "content": "Paris or Rome: which is warmer?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "a1b2c3d4e", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "f5g6h7i8j", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "a1b2c3d4e", "name": "get_weather", "content": "18"},
        {"role": "tool", "tool_call_id": "f5g6h7i8j", "name": "get_weather", "content": "24"},
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "Thanks"}]},
    "reasoning content, thinking off": {"enable_thinking": False, "messages": [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2", "reasoning_content": "One and one."},
        {"role": "user", "content": "2+2?"}]},
}

out = []
env = render.environment()
for path in sys.argv[2:]:
    for name, case in CASES.items():
        entry = {"template": os.path.basename(path), "case": name}
        try:
            template = env.from_string(open(path, encoding="utf-8").read())
            entry["expected"] = template.render(messages=case["messages"], tools=case.get("tools"),
                                                add_generation_prompt=case.get("add_generation_prompt", True),
                                                bos_token="<s>", eos_token="</s>",
                                                **({"enable_thinking": case["enable_thinking"]} if "enable_thinking" in case else {}))
        except Exception as e:
            entry["error"] = type(e).__name__ + ": " + str(e)
        out.append(entry)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump({"cases": CASES, "renderings": out}, f, ensure_ascii=False, indent=1)
