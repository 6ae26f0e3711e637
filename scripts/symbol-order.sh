#!/usr/bin/env bash
# Regenerates server/symbol-order.txt, the order in which the linker lays out the `openclaw`
# binary's hot functions (see server/build.rs).
#
# Why: most of the gateway's idle RSS is its own code, paged in 64 KiB at a time by the kernel's
# fault-around. Left in the compiler's order, the few hundred KiB of functions that start-up,
# /health, /metrics and a chat turn run are spread over the whole 9 MB .text, and each touched
# window maps 16 pages. Listed first, they sit together (idle RSS 9.3 MB -> 5 MB, measured with
# `cargo bench -p openclaw-tests --bench gateway`).
#
# How: run the release gateway under valgrind's callgrind through the usual scenarios (no
# config; an OpenAI-compatible provider answering a chat turn, plain and streamed; the default
# local model answering the same and released when idle), collect every function that ran, keep those the binary defines, in
# their current address order. Done for the default build and for `--no-default-features`
# (cargo features change the symbol hashes of the crates they touch), the two lists joined.
# Symbols that later disappear (renamed, inlined) are ignored by the linker, so a stale list
# only costs locality. Rust symbol hashes change with a crate's dependencies and features: re-run
# this after adding a dependency to a workspace crate (the gateway bench prints how much of the
# list the binary still has) and after big changes.
#
# Usage: scripts/symbol-order.sh        (needs valgrind; installs it with apt when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/openclaw-target}"

if ! command -v valgrind >/dev/null; then
    echo "installing valgrind…" >&2
    apt-get install -y -qq valgrind >/dev/null
fi

bin="$CARGO_TARGET_DIR/release/openclaw"
model="$(FETCH_MODEL_CACHE_ONLY=1 ./scripts/fetch-model.sh)"
work="$(mktemp -d)"
cleanup() {
    pkill -P $$ 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=18931
llm_port=18932

# A minimal OpenAI-compatible server: one canned reply, plain or streamed.
cat >"$work/fake_openai.py" <<'PY'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for piece in ["Par", "is", "."]:
                chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            last = {"id": "c1", "object": "chat.completion.chunk", "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            return
        reply = {"id": "c1", "object": "chat.completion", "model": "m", "usage": usage,
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Paris."}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/fake_openai.py" "$llm_port" &

chat='{"model":"openclaw","messages":[{"role":"user","content":"What is the capital of France?"}]}'
chat_stream='{"model":"openclaw","stream":true,"messages":[{"role":"user","content":"What is the capital of France?"}]}'

# trace NAME CONFIG_TEXT REQUESTS...: one callgrind run of the gateway.
trace() {
    local name="$1" config="$2"
    shift 2
    local data="$work/$name"
    mkdir -p "$data/models"
    printf '%s' "$config" >"$data/config.yaml"
    [ "$name" = local ] && ln -sf "$model" "$data/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    OPENCLAW_DATA_DIR="$data" valgrind --tool=callgrind --demangle=no \
        --callgrind-out-file="$work/$name.callgrind" \
        "$bin" gateway run --config "$data/config.yaml" --port "$port" >"$work/$name.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 300); do
        curl -fs -o /dev/null "http://127.0.0.1:$port/health" && break
        curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
        sleep 0.1
    done
    # The token the gateway generated (it guards /v1 even on loopback).
    local token
    token="$(cat "$data/gateway.token")"
    for _ in 1 2 3; do
        curl -s -o /dev/null "http://127.0.0.1:$port/health"
        curl -s -o /dev/null "http://127.0.0.1:$port/ready"
        curl -s -o /dev/null "http://127.0.0.1:$port/metrics"
        for body in "$@"; do
            curl -s -o /dev/null -H 'content-type: application/json' \
                -H "authorization: Bearer $token" -d "$body" \
                "http://127.0.0.1:$port/v1/chat/completions"
        done
    done
    sleep 4
    kill -TERM "$pid"
    wait "$pid" || true
    echo "traced: $name" >&2
}

# trace_build NAME CARGO_ARGS...: build, trace every scenario, list the functions that ran.
trace_build() {
    local build="$1"
    shift
    cargo build --release --locked -p openclaw-server "$@"
    rm -f "$work"/*.callgrind
    trace bare ""
    trace openai "providers:
      openai:
        api_key: sk-trace
        base_url: http://127.0.0.1:$llm_port/v1
        model: gpt-4o-mini
    " "$chat" "$chat_stream"
    # The real model answers (in its own process, which callgrind does not follow), and is
    # released after 2 s idle before the gateway stops: the release path is traced too.
    trace local "providers:
      local:
        idle_unload_seconds: 2
        max_tokens: 8
    " "$chat" "$chat_stream"
    nm --defined-only "$bin" >"$work/nm.txt"
    python3 - "$work" >"$work/$build.order" <<'PY'
import glob, re, sys
work = sys.argv[1]
ran = set()
for path in glob.glob(f"{work}/*.callgrind"):
    for line in open(path, errors="replace"):
        m = re.match(r"c?fn=\(\d+\) (.+)", line)
        if m:
            ran.add(re.sub(r"'\d+$", "", m.group(1).strip()))
rows = []
for line in open(f"{work}/nm.txt"):
    parts = line.split()
    if len(parts) == 3 and parts[1] in "tTwW" and parts[2] in ran:
        rows.append((int(parts[0], 16), parts[2]))
for _, name in sorted(rows):
    print(name)
PY
    echo "$build build: $(wc -l <"$work/$build.order") functions ran" >&2
}

# The lean build first, the default one last: the binary left in target/ is the default one.
trace_build lean --no-default-features
trace_build default
# One list for both; a name shared by both builds is kept once, where it first appears.
awk '!seen[$0]++' "$work/default.order" "$work/lean.order" >server/symbol-order.txt
echo "server/symbol-order.txt: $(wc -l <server/symbol-order.txt) functions" >&2
