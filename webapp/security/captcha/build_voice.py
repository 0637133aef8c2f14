"""Rebuild the spoken digits in webapp/security/captcha/voice/ (a maintainer's tool, never run
by the app).

    apt-get install espeak-ng sox
    .venv/bin/python -m webapp.security.captcha.build_voice

Each of the ten Spanish digits is spoken by espeak-ng's Latin-American voice in two variants
(a lower, male one and a higher, female one), trimmed of silence, normalised and stored as
8 kHz mono unsigned 8-bit PCM: about 3.5 KB a clip, 70 KB for the twenty. The app only reads
these files; it never needs espeak-ng or sox.

Every shipped clip is public, a template an attacker can slide along a challenge: challenge.py
never plays one as it is, but changes its pitch, pace and colour at random each time, which
gives far more voices than shipping more clips would (a third voice made no difference to the
attack in tests/test_captcha_solver.py, and made that test a third slower).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from webapp.security.captcha.challenge import DIGIT_WORDS, VOICE_DIR

# variant directory -> espeak-ng arguments (voice, pitch 0-99, words per minute)
VARIANTS = {
    "grave": ["-v", "es-419", "-p", "40", "-s", "150"],
    "aguda": ["-v", "es-419+f3", "-p", "55", "-s", "150"],
}


def build(out: Path = VOICE_DIR) -> list[Path]:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install espeak-ng sox")
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, args in VARIANTS.items():
            (out / variant).mkdir(parents=True, exist_ok=True)
            for digit, word in enumerate(DIGIT_WORDS):
                raw = Path(tmp) / f"{variant}-{digit}.wav"
                target = out / variant / f"{digit}.wav"
                subprocess.run(["espeak-ng", *args, "-w", str(raw), word], check=True)
                # to 8 kHz mono u8 (-D: no dither, so a rebuild gives the same bytes); cut the
                # silence at both ends; peak at -1 dBFS
                subprocess.run(
                    ["sox", "-D", str(raw), "-r", "8000", "-c", "1", "-b", "8",
                     "-e", "unsigned-integer", str(target), "silence", "1", "0.01", "1%", "reverse",
                     "silence", "1", "0.01", "1%", "reverse", "gain", "-n", "-1"],
                    check=True,
                )  # fmt: skip
                written.append(target)
    return written


if __name__ == "__main__":
    files = build()
    print(f"{len(files)} clips, {sum(f.stat().st_size for f in files)} bytes in {VOICE_DIR}")
