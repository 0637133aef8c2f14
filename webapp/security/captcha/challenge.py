"""A captcha made here, without Flask and without any outside service: digits as a distorted PNG
and the same digits spoken in Spanish as a WAV (the audio alternative, WCAG 2.2 SC 3.3.8).

Everything follows from a seed: the answer, the image and the audio. The same seed gives the same
bytes (tests; a server that renders the image again from a signed token); no seed, a random one.
Digits only: easy to type on a phone keypad, and speakable.

The voice is twenty clips in voice/ (the ten digits, two variants each, 8 kHz mono 8-bit) made
once with espeak-ng by `python -m webapp.security.captcha.build_voice`; at run time they are
only read,
slowed or sped up a little, spaced at random and mixed over light noise with array arithmetic.
"""

from __future__ import annotations

import hashlib
import io
import math
import operator
import random
import secrets
import wave
from array import array
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DIGIT_WORDS = ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve")
VOICE_DIR = Path(__file__).resolve().parent / "voice"

DEFAULT_LENGTH = 5
MAX_LENGTH = 10
IMAGE_SIZE = (240, 80)  # CSS pixels too: the form's <img> says width=240 height=80
AUDIO_RATE = 8000  # Hz, mono, unsigned 8-bit: telephone quality, small files


def _seed_bytes(seed: bytes | str | int) -> bytes:
    if isinstance(seed, bytes):
        return seed
    if isinstance(seed, str):
        return seed.encode()
    return seed.to_bytes((seed.bit_length() + 8) // 8, "big", signed=True)


def _derive(tag: str, seed: bytes) -> bytes:
    return hashlib.sha256(f"autofactura-captcha/{tag}\0".encode() + seed).digest()


def answer_for(seed: bytes | str | int, length: int = DEFAULT_LENGTH) -> str:
    """The `length` digits that `seed` stands for (leading zeros kept)."""
    if not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be 1..{MAX_LENGTH}, not {length}")
    n = int.from_bytes(_derive("answer", _seed_bytes(seed)), "big")
    return f"{n % 10**length:0{length}d}"


@dataclass(frozen=True)
class Challenge:
    """The answer and its two renderings, each made on first use and then kept."""

    answer: str = field(repr=False)
    seed: bytes = field(repr=False)

    @cached_property
    def image_png(self) -> bytes:
        return render_png(self.answer, self.seed)

    @cached_property
    def audio_wav(self) -> bytes:
        return render_wav(self.answer, self.seed)


def new_challenge(length: int = DEFAULT_LENGTH, seed: bytes | str | int | None = None) -> Challenge:
    """A challenge of `length` digits; deterministic given `seed`, random without one."""
    raw = secrets.token_bytes(32) if seed is None else _seed_bytes(seed)
    return Challenge(answer_for(raw, length), raw)


# --- image ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's embedded font (Aileron): the same glyphs on every machine, no font file to ship
    return ImageFont.load_default(size=size)


def _glyph(char: str, size: int, rng: random.Random) -> Image.Image:
    """One digit as an alpha mask: drawn thick, turned and scaled at random."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(char, stroke_width=1)
    im = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    pen = ImageDraw.Draw(im)
    pen.text((4 - left, 4 - top), char, font=font, fill=255, stroke_width=1, stroke_fill=255)
    im = im.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BICUBIC, expand=True)
    scale = rng.uniform(0.85, 1.1)
    return im.resize(
        (max(1, round(im.width * scale)), max(1, round(im.height * scale))),
        Image.Resampling.BICUBIC,
    )


def _wave_warp(mask: Image.Image, rng: random.Random) -> Image.Image:
    """Bend the mask along a sine: each 6-pixel column strip is taken from higher or lower."""
    w, h = mask.size
    amplitude = rng.uniform(3.0, 6.0)
    period = rng.uniform(70.0, 130.0)
    phase = rng.uniform(0, 2 * math.pi)

    def dy(x: float) -> float:
        return amplitude * math.sin(2 * math.pi * x / period + phase)

    mesh = []
    for x0 in range(0, w, 6):
        x1 = min(w, x0 + 6)
        quad = (x0, dy(x0), x0, h + dy(x0), x1, h + dy(x1), x1, dy(x1))
        mesh.append(((x0, 0, x1, h), quad))
    return mask.transform(mask.size, Image.Transform.MESH, mesh, Image.Resampling.BILINEAR)


def _curve(rng: random.Random, w: int, h: int) -> list[tuple[float, float]]:
    """A sine-shaped line across the whole width, at a random height."""
    base = rng.uniform(h * 0.3, h * 0.7)
    amplitude = rng.uniform(h * 0.1, h * 0.3)
    period = rng.uniform(w * 0.5, w * 1.5)
    phase = rng.uniform(0, 2 * math.pi)
    return [
        (x, base + amplitude * math.sin(2 * math.pi * x / period + phase))
        for x in range(-4, w + 5, 4)
    ]


def render_png(answer: str, seed: bytes | str | int) -> bytes:
    """The digits of `answer`, distorted but readable, as a 16-colour PNG of IMAGE_SIZE."""
    rng = random.Random(_derive("image", _seed_bytes(seed)))
    w, h = IMAGE_SIZE
    size = 46 if len(answer) <= 6 else max(24, 46 * 6 // len(answer))
    glyphs = [_glyph(c, size, rng) for c in answer]

    # lay the digits out left to right, centred, touching or slightly apart
    gaps = [rng.randint(-10, -2) for _ in glyphs[1:]]
    total = sum(g.width for g in glyphs) + sum(gaps)
    squeeze = max(0, total - (w - 12))
    if squeeze and gaps:
        gaps = [g - math.ceil(squeeze / len(gaps)) for g in gaps]
        total = sum(g.width for g in glyphs) + sum(gaps)
    x = (w - total) // 2
    mask = Image.new("L", (w, h), 0)
    for i, g in enumerate(glyphs):
        y = (h - g.height) // 2 + rng.randint(-7, 7)
        y = min(max(y, -4), h - g.height + 4)
        mask.paste(255, (x, y), g)
        x += g.width + (gaps[i] if i < len(gaps) else 0)
    mask = _wave_warp(mask, rng)

    # a line through the digits, in the digits' colour, so colour alone cannot separate them
    draw = ImageDraw.Draw(mask)
    draw.line(_curve(rng, w, h), fill=255, width=2, joint="curve")

    background = tuple(rng.randint(232, 255) for _ in range(3))
    ink = tuple(rng.randint(0, 90) for _ in range(3))
    image = Image.new("RGB", (w, h), background)
    pen = ImageDraw.Draw(image)
    for _ in range(3):  # lighter clutter behind
        tone = tuple(rng.randint(150, 210) for _ in range(3))
        pen.line(_curve(rng, w, h), fill=tone, width=1)
    for _ in range(120):
        px, py = rng.randrange(w), rng.randrange(h)
        tone = tuple(rng.randint(120, 220) for _ in range(3))
        pen.point((px, py), fill=tone)
    image.paste(ink, (0, 0), mask)
    for _ in range(40):  # a few dark specks in front
        px, py = rng.randrange(w), rng.randrange(h)
        pen.rectangle((px, py, px + 1, py + 1), fill=ink)

    out = io.BytesIO()
    image.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True
    )
    return out.getvalue()


# --- audio ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _voices() -> dict[str, list[array]]:
    """digit -> its clips as signed samples (-128..127), read once from voice/."""
    voices: dict[str, list[array]] = {str(d): [] for d in range(10)}
    for variant in sorted(p for p in VOICE_DIR.iterdir() if p.is_dir()):
        for digit in voices:
            with wave.open(str(variant / f"{digit}.wav"), "rb") as clip:
                params = (clip.getnchannels(), clip.getsampwidth(), clip.getframerate())
                if params != (1, 1, AUDIO_RATE):
                    raise ValueError(f"{variant / digit}.wav is not 8 kHz mono 8-bit")
                frames = clip.readframes(clip.getnframes())
            voices[digit].append(array("h", (b - 128 for b in frames)))
    if not all(voices.values()):
        raise FileNotFoundError(f"spoken digits missing in {VOICE_DIR}")
    return voices


def _stretch(clip: array, factor: float) -> array:
    """Resample by linear interpolation: factor > 1 is faster (shorter), < 1 slower."""
    positions = [i * factor for i in range(int((len(clip) - 1) / factor))]
    return array(
        "h",
        [
            clip[j] + int((clip[j + 1] - clip[j]) * (p - j))
            for p, j in zip(positions, map(int, positions), strict=True)
        ],
    )


def _mix(track: array, clip: array, at: int, gain: float) -> None:
    """Add `clip` times `gain` into `track` from sample `at` on."""
    m = min(len(clip), len(track) - at)
    if m > 0:
        scaled = [int(v * gain) for v in clip[:m]]
        track[at : at + m] = array("h", map(operator.add, track[at : at + m], scaled))


@lru_cache(maxsize=1)
def _to_unsigned8() -> bytes:
    """Table from a signed 16-bit sample (offset by 32768) to its clipped unsigned 8-bit byte."""
    return bytes(min(255, max(0, v + 128)) for v in range(-32768, 32768))


def _noise(rng: random.Random, n: int, level: int) -> array:
    """White noise of ±`level`, from random bytes mapped through a table (fast)."""
    span = 2 * level + 1
    table = bytes(((b % span) - level) & 0xFF for b in range(256))
    return array("h", array("b", rng.randbytes(n).translate(table)))


def _beep(seconds: float, hz: float, amplitude: int) -> array:
    """A sine tone faded in and out: the cue that the digits are coming."""
    n = int(seconds * AUDIO_RATE)
    fade = n // 8
    step = 2 * math.pi * hz / AUDIO_RATE
    envelope = (min(1, i / fade, (n - i) / fade) for i in range(n))
    return array("h", (round(amplitude * e * math.sin(step * i)) for i, e in enumerate(envelope)))


def render_wav(answer: str, seed: bytes | str | int) -> bytes:
    """The digits of `answer` read in Spanish over light noise: 8 kHz mono 8-bit WAV.

    A short beep, then each digit in one of two voices, a little faster or slower, louder or
    softer, with 0.45–0.85 s of silence between them; under it all, faint white noise and a
    few digits played backwards (babble a listener ignores, a matcher does not).
    """
    rng = random.Random(_derive("audio", _seed_bytes(seed)))
    voices = _voices()
    spoken = []
    for digit in answer:
        clip = rng.choice(voices[digit])
        spoken.append((_stretch(clip, rng.uniform(0.93, 1.07)), rng.uniform(0.8, 1.0)))
    lead, tail = int(0.9 * AUDIO_RATE), int(0.5 * AUDIO_RATE)
    gaps = [int(rng.uniform(0.45, 0.85) * AUDIO_RATE) for _ in spoken[1:]] + [tail]
    n = lead + sum(len(c) for c, _ in spoken) + sum(gaps)

    track = _noise(rng, n, 3)
    pos = 0
    while pos < n:  # babble under everything
        clip = rng.choice(voices[rng.choice("0123456789")])[::-1]
        _mix(track, clip, pos, rng.uniform(0.1, 0.18))
        pos += len(clip) + rng.randrange(AUDIO_RATE // 10, AUDIO_RATE // 2)
    _mix(track, _beep(0.18, 660, 40), int(0.15 * AUDIO_RATE), 1)
    pos = lead
    for (clip, gain), gap in zip(spoken, gaps, strict=True):
        _mix(track, clip, pos, gain)
        pos += len(clip) + gap

    samples = bytes(map(_to_unsigned8().__getitem__, map((32768).__add__, track)))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(AUDIO_RATE)
        wav.writeframes(samples)
    return out.getvalue()
