#!/usr/bin/env bash
# Makes (once) and prints the path of a copy of the default model, SmolLM2-135M-Instruct, whose
# GGUF chat template declares Hermes-style tool calling, for the local provider's tool tests.
#
# SmolLM2's own template has no tools, so the provider keeps tools off for it; the copy's template
# is the same ChatML plus a `tools` block, which is what turns tools on. The weights are
# untouched. The rewrite is done by the `gguf` Python package (llama.cpp's own GGUF library,
# pinned, installed with `pip install --target` under ~/.cache/openclaw/pylib: no system install).
#
# Usage: scripts/tool-model.sh    (prints the path; cached in ~/.cache/openclaw/models)
set -euo pipefail
cd "$(dirname "$0")/.."

gguf_pin="gguf==0.19.0"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/openclaw"
pylib="$cache/pylib"
out="$cache/models/SmolLM2-135M-Instruct.Q4_1.tools.gguf"
say() { echo "tool-model: $*" >&2; }

if [ -s "$out" ]; then
    echo "$out"
    exit 0
fi
base="$(FETCH_MODEL_CACHE_ONLY=1 ./scripts/fetch-model.sh)"
if ! PYTHONPATH="$pylib" python3 -c "import gguf" 2>/dev/null; then
    say "installing $gguf_pin into $pylib"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$pylib" "$gguf_pin" >&2
fi
template="$(mktemp)"
tmp="$out.tmp.$$"
trap 'rm -f "$template" "$tmp"' EXIT
# ChatML as in SmolLM2, plus the Hermes tools declaration the provider looks for.
cat >"$template" <<'JINJA'
{%- if tools %}{{- '<|im_start|>system\n# Tools\n<tools>\n' }}{%- for tool in tools %}{{- tool | tojson }}{{- '\n' }}{%- endfor %}{{- '</tools>\nCall a function with <tool_call>{"name": <function-name>, "arguments": <args-json-object>}</tool_call><|im_end|>\n' }}{%- endif %}{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}
JINJA
PYTHONPATH="$pylib" python3 -m gguf.scripts.gguf_new_metadata --chat-template-file "$template" \
    "$base" "$tmp" >/dev/null 2>&1 || {
    say "rewriting the chat template of $base failed"
    exit 1
}
mv "$tmp" "$out"
echo "$out"
