"""A captcha made here, without Flask and without any outside service: digits as a distorted PNG
and the same digits spoken in Spanish as a WAV (the audio alternative, WCAG 2.2 SC 3.3.8).

Everything follows from a seed: the answer, the image and the audio. The same seed gives the same
bytes (tests; a server that renders the image again from a signed token); no seed, a random one.
Digits only: easy to type on a phone keypad, and speakable.

The voice is twenty clips in voice/ (the ten digits, two variants each, 8 kHz mono 8-bit) made
once with espeak-ng by `python -m webapp.security.captcha.build_voice`. Those clips are public,
so neither rendering may be read by matching known shapes (issue #13 reports 85 % of codes read
by sliding each clip along the audio): each digit is drawn, or spoken, differently each time (see
"image" and "audio" below). tests/test_captcha_solver.py runs both attacks on 200 challenges.
Plain Python and Pillow only (no numpy), under 50 ms a rendering.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
import secrets
import wave
from array import array
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import repeat
from operator import add, mul
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

DIGIT_WORDS = ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve")
VOICE_DIR = Path(__file__).resolve().parent / "voice"

DEFAULT_LENGTH = 5
MAX_LENGTH = 10
IMAGE_SIZE = (240, 80)  # CSS pixels too: the form's <img> says width=240 height=80
GLYPH_SIZE = 42  # font size of the digits in a code of up to 6 (each digit varies about it)
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


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's embedded font (Aileron): the same glyphs on every machine, no font file to ship
    return ImageFont.load_default(size=size)


def _glyph(char: str, size: int, rng: random.Random | None) -> Image.Image:
    """One digit as an alpha mask, drawn thick: at its own size, slanted and turned at random.

    Without `rng`, upright at `size` (only the undisguised rendering the tests compare with).
    """
    if rng is not None:
        size = round(size * rng.uniform(0.8, 1.2))
    font = _font(size)
    left, top, right, bottom = font.getbbox(char, stroke_width=1)
    pad = 4 + size // 4  # room for the slant and the skew
    im = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    pen = ImageDraw.Draw(im)
    pen.text((pad - left, pad - top), char, font=font, fill=255, stroke_width=1, stroke_fill=255)
    if rng is None:
        return im.crop(im.getbbox())
    # Slanted (italic or backwards), skewed (rising or falling) and turned: a shape no turn of
    # the upright glyph gives, and never upright. But a 1 whose flag comes level reads as a 7,
    # and a 7 turned clockwise as a >: so a 1 slants only backwards, both turn only
    # anticlockwise, and less, and skew less; a 1 is always narrowed (its flag shrinks), a 7
    # never (its bar would).
    lookalike = char in "17"
    tilt = 0.5 if lookalike else 1.0
    slant = rng.uniform(-0.25, 0.0 if char == "1" else 0.25)
    skew = rng.uniform(-0.15, 0.15) * tilt
    w, h = im.size
    im = im.transform(
        im.size,
        Image.Transform.AFFINE,
        (1, slant, -slant * h / 2, skew, 1, -skew * w / 2),
        Image.Resampling.BICUBIC,
    )
    turn = rng.uniform(6, 20) * (tilt if lookalike else rng.choice((-1, 1)))
    im = im.rotate(turn, resample=Image.Resampling.BICUBIC, expand=True)
    im = im.crop(im.getbbox())
    wide = rng.uniform(*{"1": (0.7, 0.9), "7": (1.0, 1.3)}.get(char, (0.8, 1.3)))
    tall = rng.uniform(0.9, 1.2)
    size = (max(1, round(im.width * wide)), max(1, round(im.height * tall)))
    return im.resize(size, Image.Resampling.BICUBIC)


def _wave_warp(mask: Image.Image, rng: random.Random) -> Image.Image:
    """Bend the mask along two sines: columns up and down, and rows (more finely) left and
    right, so strokes come out wavy; each 6 x 8 pixel cell is taken from where the sines say."""
    w, h = mask.size
    amplitude, period = rng.uniform(3.0, 6.0), rng.uniform(70.0, 130.0)
    sway, wavelength = rng.uniform(2.0, 4.0), rng.uniform(25.0, 45.0)
    phase, phase2 = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)

    def source(x: float, y: float) -> tuple[float, float]:
        return (
            x + sway * math.sin(2 * math.pi * y / wavelength + phase2),
            y + amplitude * math.sin(2 * math.pi * x / period + phase),
        )

    mesh = []
    for x0 in range(0, w, 6):
        x1 = min(w, x0 + 6)
        for y0 in range(0, h, 8):
            y1 = min(h, y0 + 8)
            corners = (source(x0, y0), source(x0, y1), source(x1, y1), source(x1, y0))
            mesh.append(((x0, y0, x1, y1), tuple(v for corner in corners for v in corner)))
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


def render_png(answer: str, seed: bytes | str | int, *, disguise: bool = True) -> bytes:
    """The digits of `answer`, distorted but readable, as a 16-colour PNG of IMAGE_SIZE.

    Each digit has its own size, slant, skew and turn; the row is bent along a sine and crossed
    by a line and an arc in the digits' colour, over lighter lines and specks. disguise=False
    draws the digits upright at one size over the light clutter only: what a template matcher
    reads; tests use it to show the matcher works. Never serve it.
    """
    rng = random.Random(_derive("image", _seed_bytes(seed)))
    w, h = IMAGE_SIZE
    size = GLYPH_SIZE if len(answer) <= 6 else max(24, GLYPH_SIZE * 6 // len(answer))
    glyphs = [_glyph(c, size, rng if disguise else None) for c in answer]

    # lay the digits out left to right, centred, nearly touching (each glyph is cropped to its ink)
    gaps = [rng.randint(-1, 5) if disguise else 4 for _ in glyphs[1:]]
    total = sum(g.width for g in glyphs) + sum(gaps)
    squeeze = max(0, total - (w - 12))
    if squeeze and gaps:
        gaps = [g - math.ceil(squeeze / len(gaps)) for g in gaps]
        total = sum(g.width for g in glyphs) + sum(gaps)
    x = (w - total) // 2
    mask = Image.new("L", (w, h), 0)
    for i, g in enumerate(glyphs):
        y = (h - g.height) // 2 + (rng.randint(-6, 6) if disguise else 0)
        y = min(max(y, -3), h - g.height + 3)
        mask.paste(255, (x, y), g)
        x += g.width + (gaps[i] if i < len(gaps) else 0)
    if disguise:
        mask = _wave_warp(mask, rng)
        # a line through the digits and an arc over some, in the digits' colour, so that
        # colour alone cannot separate them
        draw = ImageDraw.Draw(mask)
        draw.line(_curve(rng, w, h), fill=255, width=2, joint="curve")
        cx, cy, r = rng.uniform(w * 0.2, w * 0.8), rng.uniform(0, h), rng.uniform(h * 0.5, h)
        start = rng.uniform(0, 360)
        arc = (cx - 2 * r, cy - r, cx + 2 * r, cy + r)
        draw.arc(arc, start, start + rng.uniform(90, 200), fill=255, width=rng.choice((1, 2)))

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
    for _ in range(40 if disguise else 0):  # a few dark specks in front
        px, py = rng.randrange(w), rng.randrange(h)
        pen.rectangle((px, py, px + 1, py + 1), fill=ink)

    out = io.BytesIO()
    image.quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, "PNG", optimize=True
    )
    return out.getvalue()


# --- audio ---------------------------------------------------------------------------------

# Every shipped clip is public (it is in the package), so none is ever played as it is: an
# attacker who slides each clip along the challenge (a matched filter) would read the digits.
# Each digit is instead resampled (pitch, formants and pace together), retimed by overlap-add
# (pace alone), coloured by a random tilt and a short echo, and set at its own loudness; the
# gaps vary, and a murmur of digit fragments (backwards or at other speeds) and a hiss lie under
# it all. tests/test_captcha_solver.py holds the attack and the checks that speech stays clear.
SPEED = (0.8, 1.25)  # resampling factor, > 1 higher and faster
TEMPO = (0.85, 1.2)  # then the duration alone, > 1 slower
GAP = (0.35, 0.8)  # seconds of pause after each digit
LOUDNESS = (0.7, 0.95)  # a digit's peak, as a fraction of full scale
BABBLE = (0.05, 0.1)  # a murmur fragment's gain (its clip peaks near full scale)
HISS = 4  # broadband noise of ± this many steps of 127
LEAD, TAIL = 0.9, 0.5  # seconds before the first digit (the beep is in it) and after the last
FULL = 127.0

_GRAIN = 240  # overlap-add grain: 30 ms
_HOP = _GRAIN // 2
# Hann window; two of them half a grain apart add up to 1, so a grain-for-grain copy is exact
_WINDOW = [math.sin(math.pi * (i + 0.5) / _GRAIN) ** 2 for i in range(_GRAIN)]


@dataclass(frozen=True)
class Speech:
    """A rendered challenge audio: 8-bit unsigned samples and where each digit is spoken."""

    samples: bytes = field(repr=False)
    spans: tuple[tuple[int, int], ...]  # (start, end) sample of each digit, in order
    rate: int = AUDIO_RATE


@lru_cache(maxsize=1)
def _voices() -> dict[str, list[list[float]]]:
    """digit -> its clips as signed samples (-128..127), read once from voice/."""
    voices: dict[str, list[list[float]]] = {str(d): [] for d in range(10)}
    for variant in sorted(p for p in VOICE_DIR.iterdir() if p.is_dir()):
        for digit in voices:
            with wave.open(str(variant / f"{digit}.wav"), "rb") as clip:
                params = (clip.getnchannels(), clip.getsampwidth(), clip.getframerate())
                if params != (1, 1, AUDIO_RATE):
                    raise ValueError(f"{variant / digit}.wav is not 8 kHz mono 8-bit")
                frames = clip.readframes(clip.getnframes())
            voices[digit].append([float(b - 128) for b in frames])
    if not all(voices.values()):
        raise FileNotFoundError(f"spoken digits missing in {VOICE_DIR}")
    return voices


def _resample(clip: list[float], factor: float) -> list[float]:
    """Played `factor` times as fast: higher and shorter above 1, lower and longer below.

    Pillow's resize of a one-row float image: linear interpolation, low-passed when shrinking.
    """
    n = max(1, round(len(clip) / factor))
    row = Image.frombytes("F", (len(clip), 1), array("f", clip).tobytes())
    return array("f", row.resize((n, 1), Image.Resampling.BILINEAR).tobytes()).tolist()


def _retime(clip: list[float], stretch: float, rng: random.Random) -> list[float]:
    """Overlap-add of 30 ms grains: `stretch` times as long at the same pitch.

    Each grain is taken a little off its place (up to 2 ms), so even at stretch 1 the waveform
    is not the clip's (the ear hardly notices; a sample-by-sample comparison does).
    """
    last = len(clip) - _GRAIN
    if last < 0:
        return clip
    n = int(len(clip) * stretch)
    out = [0.0] * (n + _GRAIN)
    for o in range(0, n, _HOP):
        i = min(last, max(0, round(o / stretch) + rng.randint(-16, 16)))
        out[o : o + _GRAIN] = map(add, out[o : o + _GRAIN], map(mul, clip[i : i + _GRAIN], _WINDOW))
    return out[:n]


def _colour(clip: list[float], rng: random.Random) -> list[float]:
    """A random spectral tilt (brighter or duller) and a 1-5 ms echo (a small room's colour)."""
    tilt = rng.uniform(-0.5, 0.5)
    out = list(map(add, clip, map(mul, [0.0, *clip[:-1]], repeat(tilt))))
    delay = rng.randint(8, 40)
    echo = rng.choice((-1, 1)) * rng.uniform(0.25, 0.5)
    out[delay:] = map(add, out[delay:], [echo * v for v in out[:-delay]])
    return out


def _scaled(clip: list[float], peak: float) -> list[float]:
    top = max(map(abs, clip), default=0.0) or 1.0
    return [v * (peak / top) for v in clip]


def _mix(track: list[float], clip: list[float], at: int) -> None:
    """Add `clip` into `track` from sample `at` on (what fits)."""
    m = min(len(clip), len(track) - at)
    if m > 0:
        track[at : at + m] = map(add, track[at : at + m], clip[:m])


def _hiss(rng: random.Random, n: int, level: int) -> list[int]:
    """White noise of ±`level`, from random bytes mapped through a table (fast)."""
    span = 2 * level + 1
    table = bytes(((b % span) - level) & 0xFF for b in range(256))
    return array("b", rng.randbytes(n).translate(table)).tolist()


def _beep(seconds: float, hz: float, amplitude: float) -> list[float]:
    """A sine tone faded in and out: the cue that the digits are coming."""
    n = int(seconds * AUDIO_RATE)
    fade = n // 8
    step = 2 * math.pi * hz / AUDIO_RATE
    return [amplitude * min(1, i / fade, (n - i) / fade) * math.sin(step * i) for i in range(n)]


def _babble(rng: random.Random, n: int) -> list[float]:
    """n samples of murmur: digit fragments one after another, backwards or at another speed."""
    voices = _voices()
    stream: list[float] = []
    while len(stream) < n:
        clip = rng.choice(voices[rng.choice("0123456789")])
        start = rng.randrange(len(clip) // 2)
        piece = clip[start : start + rng.randrange(AUDIO_RATE // 10, AUDIO_RATE // 4)]
        backwards = rng.random() < 0.5
        piece = piece[::-1] if backwards else _resample(piece, rng.uniform(0.75, 1.35))
        stream += map(mul, piece, repeat(rng.uniform(*BABBLE)))
        stream += repeat(0.0, rng.randrange(AUDIO_RATE // 20))
    return stream[:n]


def speak(answer: str, seed: bytes | str | int, *, disguise: bool = True) -> Speech:
    """The digits of `answer` read in Spanish, each disguised (see above), after a beep.

    disguise=False plays the shipped clips as they are, at the same places, over the hiss
    alone: what a matched filter reads every time; tests use it to show that the attack works
    and that it is the disguise that stops it. Never serve it.
    """
    rng = random.Random(_derive("audio", _seed_bytes(seed)))
    voices = _voices()
    spoken = []
    for digit in answer:
        clip = rng.choice(voices[digit])
        if disguise:
            clip = _resample(clip, math.exp(rng.uniform(*map(math.log, SPEED))))
            clip = _retime(clip, rng.uniform(*TEMPO), rng)
            clip = _scaled(_colour(clip, rng), rng.uniform(*LOUDNESS) * FULL)
        spoken.append(clip)
    gaps = [int(rng.uniform(*GAP) * AUDIO_RATE) for _ in spoken[1:]] + [int(TAIL * AUDIO_RATE)]
    n = int(LEAD * AUDIO_RATE) + sum(map(len, spoken)) + sum(gaps)

    track = _hiss(rng, n, HISS)
    if disguise:
        track = list(map(add, track, _babble(rng, n)))
    _mix(track, _beep(0.18, 660, 40.0), int(0.15 * AUDIO_RATE))
    pos, spans = int(LEAD * AUDIO_RATE), []
    for clip, gap in zip(spoken, gaps, strict=True):
        _mix(track, clip, pos)
        spans.append((pos, pos + len(clip)))
        pos += len(clip) + gap
    # to unsigned 8-bit, rounded and clipped: Pillow's float to 8-bit conversion does both
    row = Image.frombytes("F", (n, 1), array("f", track).tobytes())
    return Speech(row.point(lambda v: v + 128.5).convert("L").tobytes(), tuple(spans))


def render_wav(answer: str, seed: bytes | str | int) -> bytes:
    """`speak` as an 8 kHz mono 8-bit WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(AUDIO_RATE)
        wav.writeframes(speak(answer, seed).samples)
    return out.getvalue()
