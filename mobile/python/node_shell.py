"""A minimal node shell in Python over the generated uniffi bindings (ctypes, no pip): pairs with
a gateway by the code it shows, dials it, and serves camera.snap and location.get. Driven like
the JVM shell (mobile/jvm), one command per line on stdin and one answer line on stdout; the
Rust test tests/tests/mobile_ffi.rs runs it.

Usage: PYTHONPATH=<generated>/python python3 node_shell.py STATE_DIR NAME LAT,LON
"""

import base64
import hashlib
import os
import sys
import threading

import openclaw_node as oc

# An 8x8 baseline JPEG; each shot gets a fresh comment segment (COM, 0xFFFE) of random bytes
# right after its start-of-image marker, so every photo is a distinct, valid JPEG.
BASE_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERX"
    "RTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAX/"
    "xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFQEBAQAAAAAAAAAAAAAAAAAABAX/xAAUEQEAAAAAAAAAAAAAAAAAAAAA"
    "/9oADAMBAAIRAxEAPwCYAUgv/9k="
)


_out = threading.Lock()


def say(line):
    # Callbacks come from the node's threads: one whole line at a time (print() writes the
    # text and its newline separately).
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Camera(oc.CameraProvider):
    fail = False

    def list(self):
        return [oc.CameraDevice(index=0, name="python")]

    def snap(self, index):
        if self.fail:
            raise RuntimeError("python camera exploded (injected)")
        noise = os.urandom(32)
        com = b"\xff\xfe" + (len(noise) + 2).to_bytes(2, "big") + noise
        jpeg = BASE_JPEG[:2] + com + BASE_JPEG[2:]
        say(f"snap sha256={hashlib.sha256(jpeg).hexdigest()} bytes={len(jpeg)}")
        return oc.Photo(jpeg=jpeg, width=8, height=8)


class FixedLocation(oc.LocationProvider):
    def __init__(self, lat, lon):
        self.lat, self.lon = lat, lon

    def current(self, precise):
        return oc.Location(latitude=self.lat, longitude=self.lon, accuracy_m=5.0,
                           altitude_m=None, timestamp_ms=0)


class Events(oc.NodeEventListener):
    def on_event(self, event):
        # The variant's class (NodeEvent.CONNECTED, …) names the event.
        kind = type(event).__name__.rsplit(".", 1)[-1].lower()
        say(f"event {kind} {event}")


def main():
    state, name, where = sys.argv[1], sys.argv[2], sys.argv[3]
    lat, lon = (float(x) for x in where.split(","))
    camera = Camera()
    caps = oc.ShellCapabilities(camera=camera, location=FixedLocation(lat, lon),
                                notifications=None, speech=None, device_info=None)
    node = oc.MobileNode(state, oc.NodeSettings(name=name, min_backoff_ms=200),
                         caps, None, Events())
    say(f"ready {node.device_id()}")
    for line in sys.stdin:
        words = line.split()
        try:
            if words[0] == "pair":
                g = node.pair(words[1], words[2])
                say(f"paired {g.device_id} {g.name}")
            elif words[0] == "start":
                node.start()
                say("started")
            elif words[0] == "stop":
                node.stop()
                say("stopped")
            elif words[0] == "fail":
                camera.fail = words[2] == "on"
                say(f"fail {words[1]} {words[2]}")
            elif words[0] == "quit":
                break
            else:
                say(f"error Usage unknown command {words[0]}")
        except oc.NodeError as e:
            say(f"error {type(e).__name__} {e}")
    node.stop()
    say("bye")


if __name__ == "__main__":
    main()
