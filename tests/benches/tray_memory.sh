#!/usr/bin/env bash
# The tray app's whole-process figures (issue #17's benchmark), three rounds: launch to the
# embedded gateway's /health answering; RSS and PSS summed over the app and its children with
# the tray only, with the dashboard window open, and 10 s after the window was closed under a
# window manager. Build first: `cargo build --release -p openclaw-app`. Run:
#   xvfb-run -a -s "-screen 0 1280x800x24 -noreset" dbus-run-session -- \
#     tests/benches/tray_memory.sh target/release/openclaw-app
# Needs openbox, wmctrl, busctl (systemd), curl and python3.
set -u
APP=$1
export HOME; HOME=$(mktemp -d); mkdir -p "$HOME/.config" "$HOME/tmp"
export TMPDIR=$HOME/tmp
openbox >/dev/null 2>&1 &
WM=$!
# An unlocked login keyring, as on a desktop after login (the app's node keeps its key there);
# without one, GNOME Keyring is started by D-Bus activation locked and the first key waits 5 s.
KR=""
if command -v gnome-keyring-daemon >/dev/null; then
  printf 'bench' | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
  KR=$!
fi
trap 'kill $WM $KR 2>/dev/null; rm -rf "$HOME"' EXIT
sleep 0.5
D=$HOME/data; mkdir -p "$D"
cat > $D/config.yaml <<'Y'
providers:
  anthropic:
    api_key: sk-x
    base_url: "http://127.0.0.1:9"
Y
PORT=39555
sum() { # RSS and PSS in MiB over pid and descendants
  local pids="$1 $(pgrep -P $1) $(for c in $(pgrep -P $1); do pgrep -P $c; done)"
  python3 - $pids <<'P'
import sys
rss=pss=0
for p in sys.argv[1:]:
    try:
        for line in open(f"/proc/{p}/smaps_rollup"):
            if line.startswith("Rss:"): rss+=int(line.split()[1])
            if line.startswith("Pss:"): pss+=int(line.split()[1])
    except Exception: pass
print(f"rss={rss/1024:.1f}MiB pss={pss/1024:.1f}MiB procs={len(sys.argv)-1}")
P
}
for round in 1 2 3; do
  rm -rf $D/*.db* $D/db 2>/dev/null
  T0=$(date +%s%N)
  OPENCLAW_DATA_DIR=$D OPENCLAW_CONFIG=$D/config.yaml OPENCLAW_PORT=$PORT RUST_LOG=error $APP 2>/dev/null &
  A=$!
  until curl -s -o /dev/null http://127.0.0.1:$PORT/health; do sleep 0.002; done
  T1=$(date +%s%N)
  echo "round $round: launch -> /health answers $(( (T1-T0)/1000000 )) ms"
  sleep 7
  echo "  tray only, idle: $(sum $A)"
  B="busctl --address=$DBUS_SESSION_BUS_ADDRESS --timeout=3"
  N=$($B list --json=short | python3 -c "import json,sys; print([x['name'] for x in json.load(sys.stdin) if x.get('pid')==$A and x['name'].startswith(':')][0])")
  for n in $($B list --json=short | python3 -c "import json,sys; [print(x['name']) for x in json.load(sys.stdin) if x.get('pid')==$A]"); do
    if $B call -- $n /org/ayatana/NotificationItem org.freedesktop.DBus.Introspectable Introspect >/dev/null 2>&1; then N=$n; fi
  done
  P=/org/ayatana/NotificationItem/tray_icon_tray_app_openclaw/Menu
  ID=$($B --json=short call -- $N $P com.canonical.dbusmenu GetLayout iias 0 -1 0 | python3 -c "
import json,sys
d=json.load(sys.stdin)['data'][1]
for c in d[2]:
    c=c['data']
    if c[1].get('label',{}).get('data')=='Open Dashboard': print(c[0])")
  T2=$(date +%s%N)
  $B call -- $N $P com.canonical.dbusmenu Event isvu $ID clicked i 0 0
  until wmctrl -l | grep -q OpenClaw; do sleep 0.005; done
  T3=$(date +%s%N)
  echo "  click -> window mapped $(( (T3-T2)/1000000 )) ms"
  sleep 6
  echo "  window open: $(sum $A)"
  wmctrl -c OpenClaw
  sleep 10
  echo "  10 s after the window closed: $(sum $A)"
  kill -TERM $A; wait $A; echo "  exit $?"
done
