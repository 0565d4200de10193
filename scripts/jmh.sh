#!/usr/bin/env bash
# JMH microbenchmarks of the kernels (not part of the tests). Arguments go to JMH, e.g.
#   scripts/jmh.sh -p type=Q8_0,Q4_0 -p size=memory matvec
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/scripts/jdk.sh"
cd "$here"
mvn -B -q -Pjmh -DskipTests package
exec "$JAVA_HOME/bin/java" --add-modules=jdk.incubator.vector -Dgptfast.shared="$here/../shared" -jar target/jmh/gptfast4j-jmh.jar "$@"
