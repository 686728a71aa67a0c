"""Reading and writing video clips with PyAV (FFmpeg), one frame at a time.

A clip is decoded frame by frame, each frame turned into uint8 RGB (a gray clip gives equal
channels) and handed on; nothing holds more than a few frames, so memory does not grow with
the clip's length. :func:`recolor_video` writes a new clip from a stream of frames and keeps
what a viewer notices: the frame size, each frame's timestamp (so the frame rate and the
duration, variable frame rates included), the pixel aspect ratio, and every audio stream
(copied packet for packet when the output container can hold its codec, re-encoded to the
container's own audio codec otherwise). Subtitle and data streams are not carried over.

Outputs are encoded as H.264 (``.mp4``, ``.m4v``, ``.mov``, ``.mkv``), VP9 (``.webm``) or
MPEG-4 Part 2 (``.avi``), tagged BT.709, and written atomically (:func:`tinct.io.atomic_file`):
an interrupted run leaves no half-written clip under the target's name.

>>> from tinct.video.io import probe_video, read_frames          # doctest: +SKIP
>>> info = probe_video("clip.mp4"); info.width, info.frames     # doctest: +SKIP
>>> for rgb in read_frames("clip.mp4"): ...                     # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import os
import queue
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from tinct.errors import TinctError

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoReadError",
    "VideoInfo",
    "Encoding",
    "is_video_path",
    "probe_video",
    "read_frames",
    "recolor_video",
    "frame_lightness",
    "write_video",
]

# Containers tinct reads as clips and can write back (the output keeps the input's suffix).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")

# FFmpeg muxer by suffix.
_MUXER_BY_SUFFIX = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}


class VideoReadError(TinctError, ValueError):
    """A file could not be read as a video clip; the message names the file and the reason."""


@dataclass(frozen=True)
class Encoding:
    """How an output clip is encoded.

    Attributes:
        codec: FFmpeg encoder name.
        options: encoder options (FFmpeg's ``-crf``, ``-preset`` ...).
        pixel_format: the encoded pixel format; ``None`` picks 4:2:0, or 4:4:4 for an odd
            frame size (4:2:0 needs even sides for H.264).
    """

    codec: str
    options: dict[str, str] = field(default_factory=dict)
    pixel_format: str | None = None


# Visually lossless and fast: CRF 18 with x264's "veryfast" preset (its lookahead is short,
# so few frames wait inside the encoder); VP9 in its realtime mode, which is otherwise slow.
_ENCODING_BY_SUFFIX = {
    ".mp4": Encoding("libx264", {"crf": "18", "preset": "veryfast"}),
    ".m4v": Encoding("libx264", {"crf": "18", "preset": "veryfast"}),
    ".mov": Encoding("libx264", {"crf": "18", "preset": "veryfast"}),
    ".mkv": Encoding("libx264", {"crf": "18", "preset": "veryfast"}),
    ".webm": Encoding("libvpx-vp9", {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}),
    ".avi": Encoding("mpeg4", {"qscale": "3"}),
}
# Truth clips: lossless RGB (FFV1 in Matroska), so scores see exactly the rendered frames.
LOSSLESS = Encoding("ffv1", {}, "bgr0")

_BT709 = 1  # AVCOL_SPC / AVCOL_PRI / AVCOL_TRC value of BT.709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


def is_video_path(path: str | os.PathLike) -> bool:
    """Whether a file name has one of :data:`VIDEO_SUFFIXES` (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a clip's first video stream.

    Attributes:
        width, height: frame size in pixels (as stored; see ``rotation``).
        frames: frame count, exact when the container records it, else estimated from the
            duration and the frame rate (``frames_exact`` says which); 0 when unknown.
        rate: average frame rate (frames per second) as a fraction, or ``None``.
        duration: seconds, or ``None`` when the container does not say.
        audio_streams: number of audio streams.
        codec: the video codec's name.
        rotation: the display rotation in degrees a player applies (not applied by tinct).
    """

    path: Path
    width: int
    height: int
    frames: int
    frames_exact: bool
    rate: Fraction | None
    duration: float | None
    audio_streams: int
    codec: str
    rotation: int = 0


def _open_input(path: Path):
    import av

    if not path.exists():
        raise VideoReadError(f"{path}: no such file")
    if path.is_dir():
        raise VideoReadError(f"{path}: is a folder, not a video")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoReadError(f"{path}: not a video FFmpeg can read ({_first_line(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"{path}: holds no video stream")
    return container


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _duration_seconds(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """The header facts of a clip, without decoding it. Raises :class:`VideoReadError`."""
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        duration = _duration_seconds(container, stream)
        frames, exact = int(stream.frames or 0), bool(stream.frames)
        if not frames and duration is not None and rate:
            frames = int(round(duration * float(rate)))
        rotation = 0
        try:
            rotation = int(round(stream.codec_context.display_matrix_rotation))  # PyAV without it: 0
        except AttributeError:
            pass
        return VideoInfo(
            path=path, width=stream.codec_context.width, height=stream.codec_context.height, frames=frames,
            frames_exact=exact, rate=Fraction(rate) if rate else None, duration=duration,
            audio_streams=len(container.streams.audio), codec=stream.codec_context.name, rotation=rotation,
        )  # fmt: skip
    finally:
        container.close()


def _rgb_of(frame) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of a decoded frame (its own colour matrix and range honoured)."""
    return frame.to_ndarray(format="rgb24")


def read_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Each frame of a clip's first video stream as uint8 RGB ``(H, W, 3)``, in display order.

    Raises:
        VideoReadError: the file is missing, empty or not a video (at the first ``next``),
            or a frame cannot be decoded.
    """
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        for frame in _decoded(container, stream, path):
            if max_frames is not None and count >= max_frames:
                return
            yield _rgb_of(frame)
            count += 1
    finally:
        container.close()


def _decoded(container, stream, path: Path, on_other_packet: Callable | None = None) -> Iterator:
    """Decoded frames of ``stream``; other streams' packets go to ``on_other_packet``."""
    import av

    streams = [stream] + ([s for s in container.streams.audio] if on_other_packet else [])
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets, None)
            if packet is None:
                return
            frames = packet.decode() if packet.stream is stream else None
        except av.FFmpegError as exc:
            raise VideoReadError(f"{path}: cannot decode ({_first_line(exc)})") from None
        if frames is not None:
            yield from frames
        elif packet.dts is not None:  # the demuxer's flush packets carry nothing
            on_other_packet(packet)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _encoding_for(target: Path, width: int, height: int, encoding: Encoding | None) -> Encoding:
    suffix = target.suffix.lower()
    if suffix not in _MUXER_BY_SUFFIX:
        raise ValueError(f"{target}: unknown video suffix {suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}")
    chosen = encoding or _ENCODING_BY_SUFFIX[suffix]
    if chosen.pixel_format is not None:
        return chosen
    odd = width % 2 or height % 2
    if odd and chosen.codec == "mpeg4":
        raise ValueError(f"{target}: MPEG-4 (.avi) needs an even frame size, this clip is {width}x{height}; write .mp4 or .mkv")
    return Encoding(chosen.codec, dict(chosen.options), "yuv444p" if odd and chosen.codec == "libx264" else "yuv420p")


class _Writer:
    """An open output container with one video stream (and audio streams copied or re-encoded)."""

    def __init__(self, handle, target: Path, width: int, height: int, rate: Fraction, time_base: Fraction,
                 encoding: Encoding | None, sample_aspect_ratio=None):  # fmt: skip
        import av

        self.encoding = _encoding_for(target, width, height, encoding)
        self.container = av.open(handle, mode="w", format=_MUXER_BY_SUFFIX[target.suffix.lower()])
        self.video = self.container.add_stream(self.encoding.codec, rate=rate)
        context = self.video.codec_context
        context.width, context.height = width, height
        context.pix_fmt = self.encoding.pixel_format
        context.time_base = self.time_base = time_base  # of frame timestamps (the muxer may pick its own)
        self.video.time_base = time_base
        if sample_aspect_ratio:
            context.sample_aspect_ratio = sample_aspect_ratio
        self.rgb_input = self.encoding.pixel_format in ("bgr0", "rgb24", "gbrp")
        if not self.rgb_input:
            context.colorspace, context.color_primaries, context.color_trc = _BT709, _BT709, _BT709
            context.color_range = _LIMITED_RANGE
        context.options = dict(self.encoding.options)
        context.thread_type = "AUTO"
        self.audio: dict[int, tuple] = {}  # input stream index -> (output stream, decoder-side stream or None)
        self.last_pts: int | None = None
        self.started = False

    def _start(self) -> None:
        # The header is written once every stream is added; only then are the streams' time
        # bases final (Matroska's is 1/1000), and packets must be rescaled to those.
        if not self.started:
            self.container.start_encoding()
            self.started = True

    def add_audio(self, stream) -> None:
        """Carry an input audio stream: copied when the container takes its codec, else re-encoded."""
        name = stream.codec_context.name
        if name in self.container.supported_codecs:
            out = self.container.add_stream_from_template(stream)
            self.audio[stream.index] = (out, None)
        else:
            import av

            codec = av.codec.Codec(self.container.default_audio_codec, "w")
            rate = stream.codec_context.sample_rate
            rates = codec.audio_rates
            if rates and rate not in rates:
                rate = 48000 if 48000 in rates else max(rates)
            out = self.container.add_stream(codec.name, rate=rate)
            out.codec_context.format = codec.audio_formats[0].name
            out.codec_context.layout = "stereo" if stream.codec_context.channels > 1 else "mono"
            self.audio[stream.index] = (out, stream)

    def audio_packet(self, packet) -> None:
        self._start()
        out, decoder_side = self.audio[packet.stream.index]
        if decoder_side is None:
            packet.stream = out
            self.container.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers samples itself, from the start
            self.container.mux(out.encode(frame))

    def write(self, rgb: np.ndarray, pts: int) -> None:
        import av

        if self.last_pts is not None and pts <= self.last_pts:
            pts = self.last_pts + 1  # a damaged input's repeated timestamp; encoders need them rising
        self.last_pts = pts
        self._start()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if self.rgb_input:
            frame = frame.reformat(format=self.encoding.pixel_format)
        else:
            frame = frame.reformat(format=self.encoding.pixel_format, dst_colorspace=_BT709, dst_color_range=_LIMITED_RANGE)
            frame.colorspace, frame.color_range = _BT709, _LIMITED_RANGE
        frame.pts = pts
        frame.time_base = self.time_base
        self.container.mux(self.video.encode(frame))

    def close(self) -> None:
        self._start()
        self.container.mux(self.video.encode(None))
        for out, decoder_side in self.audio.values():
            if decoder_side is not None:
                self.container.mux(out.encode(None))
        self.container.close()


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    rate: Fraction | int | float = 24,
    encoding: Encoding | None = None,
    overwrite: bool = False,
    audio: tuple[np.ndarray, int] | None = None,
) -> Path:
    """Write uint8 RGB frames ``(H, W, 3)`` as a clip at a constant frame rate, atomically.

    ``encoding`` defaults to the suffix's (see the module docstring); :data:`LOSSLESS` with a
    ``.mkv`` name keeps every pixel exactly. Frames stream through: any iterable will do.
    ``audio`` is a soundtrack ``(samples, sample_rate)``: float32 ``(channels, n)`` in [-1, 1]
    (1 or 2 channels), encoded with the container's audio codec and interleaved with the frames.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        ValueError: an unknown suffix, frames of different sizes, or no frames.
    """
    from tinct.io import atomic_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists (pass overwrite=True to replace it)")
    rate = Fraction(rate).limit_denominator(1001 * 1000)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    height, width = first.shape[:2]
    with atomic_file(path) as handle:
        writer = _Writer(handle, path, width, height, rate, 1 / rate, encoding)
        track = _Soundtrack(writer, *audio) if audio is not None else None
        for index, rgb in enumerate(itertools.chain([first], iterator)):
            writer.write(_checked_frame(rgb, width, height, path), index)
            if track is not None:
                track.until((index + 1) / rate)
        if track is not None:
            track.until(None)
        writer.close()
    return path


class _Soundtrack:
    """Samples encoded into an audio stream of a :class:`_Writer`, a chunk at a time."""

    CHUNK = 1024

    def __init__(self, writer: "_Writer", samples: np.ndarray, sample_rate: int):
        import av

        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if samples.ndim != 2 or samples.shape[0] not in (1, 2):
            raise ValueError(f"expected audio samples of shape (1 or 2, n), got {samples.shape}")
        self.writer, self.samples, self.rate = writer, samples, int(sample_rate)
        self.layout = "stereo" if samples.shape[0] == 2 else "mono"
        codec = av.codec.Codec(writer.container.default_audio_codec, "w")
        self.stream = writer.container.add_stream(codec.name, rate=self.rate)
        self.stream.codec_context.layout = self.layout
        self.stream.codec_context.format = codec.audio_formats[0].name
        self.done = 0

    def until(self, seconds) -> None:
        """Encode the samples up to ``seconds`` (``None``: all, and flush)."""
        import av

        self.writer._start()
        stop = self.samples.shape[1] if seconds is None else min(self.samples.shape[1], int(seconds * self.rate))
        while self.done < stop:
            chunk = self.samples[:, self.done : min(self.done + self.CHUNK, stop)]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=self.layout)
            frame.sample_rate, frame.pts = self.rate, self.done
            self.writer.container.mux(self.stream.encode(frame))
            self.done += chunk.shape[1]
        if seconds is None:
            self.writer.container.mux(self.stream.encode(None))


def _checked_frame(rgb: np.ndarray, width: int, height: int, path: Path) -> np.ndarray:
    if rgb.dtype != np.uint8 or rgb.shape != (height, width, 3):
        raise ValueError(f"{path}: expected uint8 frames of shape ({height}, {width}, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


@dataclass
class RecolorResult:
    """What :func:`recolor_video` wrote."""

    frames: int


class _Timeline:
    """Output timestamps from input ones. Where the input's time base is a whole fraction of
    the frame interval, timestamps are copied; otherwise (Matroska's 1 ms, say, at 24 frames/s)
    a timestamp that is a rounded multiple of the frame interval goes back to that multiple
    on a finer time base, so the output's frame rate is the nominal one, not 24.004. Other
    timestamps (variable frame rates) keep their time."""

    def __init__(self, time_base: Fraction, rate: Fraction):
        self.input = Fraction(time_base)
        self.interval = 1 / Fraction(rate)
        ticks = self.interval / self.input
        self.exact = ticks.denominator == 1
        self.output = self.input if self.exact else self.interval / 1000
        self.step = int(ticks) if self.exact else 1000  # one frame interval, in output ticks

    def __call__(self, pts: int) -> int:
        if self.exact:
            return pts
        time = pts * self.input
        frames = round(time / self.interval)
        if abs(time - frames * self.interval) <= self.input / 2:
            return frames * 1000
        return round(time / self.output)


class _Reader(threading.Thread):
    """Demuxes and decodes a clip in its own thread (FFmpeg and NumPy release the GIL, so this
    overlaps the network and the encoder) and hands ``("video", pts, prepare(frame))`` and
    ``("audio", packet)`` items, in file order, through a bounded queue; then ``("end",)`` or
    ``("error", exception)``."""

    DEPTH = 8  # items waiting at most: a few frames' memory

    def __init__(self, container, stream, path: Path, timeline: _Timeline, prepare: Callable):
        super().__init__(name=f"tinct-read-{path.name}", daemon=True)
        self.container, self.stream, self.path = container, stream, path
        self.timeline, self.prepare = timeline, prepare
        self.items: queue.Queue = queue.Queue(maxsize=self.DEPTH)
        self.stopped = threading.Event()

    def _put(self, item) -> None:
        while not self.stopped.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run(self) -> None:
        try:
            audio = (lambda packet: self._put(("audio", packet))) if self.container.streams.audio else None
            previous = None
            for frame in _decoded(self.container, self.stream, self.path, audio):
                if frame.pts is not None:
                    pts = self.timeline(frame.pts)
                else:  # a container without timestamps: one frame interval after the last
                    pts = previous + self.timeline.step if previous is not None else 0
                previous = pts
                self._put(("video", pts, self.prepare(frame)))
            self._put(("end",))
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the writing thread, which raises it
            try:
                self._put(("error", exc))
            except _Stopped:
                pass

    def stop(self) -> None:
        self.stopped.set()
        self.join()


class _Stopped(Exception):
    """The consumer of a :class:`_Reader` has gone."""


def recolor_video(
    source: str | os.PathLike,
    target: str | os.PathLike,
    transform: Callable[[Iterator], Iterator[np.ndarray]],
    overwrite: bool = False,
    encoding: Encoding | None = None,
    on_frame: Callable[[], None] | None = None,
    prepare: Callable | None = None,
) -> RecolorResult:
    """Write ``target``: the frames of ``source`` passed through ``transform``, with the source's
    timestamps, frame size, pixel aspect and audio.

    Each decoded frame (a PyAV ``VideoFrame``) is turned by ``prepare`` into what ``transform``
    receives (default: uint8 RGB ``(H, W, 3)``; :func:`frame_lightness` gives lightness), in a
    reading thread. ``transform`` takes an iterator of those and returns an iterator of as many
    uint8 RGB frames of the source's size, in order; it may read ahead (a batch of frames),
    and audio read meanwhile is written as it comes. ``on_frame`` is called after each frame
    is written (a progress bar).

    Raises:
        VideoReadError: ``source`` cannot be read (nothing is written).
        FileExistsError: ``target`` exists and ``overwrite`` is false.
        ValueError: the transform returned a frame of another size, or too few or many frames.
    """
    from tinct.io import atomic_file

    source, target = Path(source), Path(target)
    container = _open_input(source)
    reader = None
    try:
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target}: exists (pass overwrite=True / --overwrite to replace it)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = Fraction(stream.average_rate or stream.guessed_rate or 25)
        timeline = _Timeline(stream.time_base or 1 / rate, rate)
        with atomic_file(target) as handle:
            writer = _Writer(handle, target, width, height, rate, timeline.output, encoding,
                             stream.codec_context.sample_aspect_ratio)  # fmt: skip
            for audio in container.streams.audio:
                writer.add_audio(audio)
            timestamps: list[int] = []  # of frames read but not yet written (a batch at most)
            reader = _Reader(container, stream, source, timeline, prepare or _rgb_of)
            reader.start()
            outputs = transform(_frames_for_transform(reader, writer, timestamps))
            written = _write_frames(source, outputs, writer, timestamps, (height, width, 3), on_frame)
            writer.close()
        return RecolorResult(written)
    finally:
        if reader is not None:
            reader.stop()
        container.close()


def _frames_for_transform(reader: _Reader, writer: _Writer, timestamps: list[int]) -> Iterator:
    """What ``reader`` decodes, prepared, for the transform; each frame's timestamp goes onto
    ``timestamps`` and the audio read meanwhile into ``writer`` (one thread writes the output)."""
    while True:
        item = reader.items.get()
        if item[0] == "audio":
            writer.audio_packet(item[1])
        elif item[0] == "video":
            timestamps.append(item[1])
            yield item[2]
        elif item[0] == "error":
            raise item[1]
        else:
            return


def _write_frames(source: Path, outputs: Iterator[np.ndarray], writer: _Writer, timestamps: list[int],
                  shape: tuple[int, int, int], on_frame: Callable[[], None] | None) -> int:
    """Write each uint8 RGB frame of ``outputs`` (``shape``) at the oldest pending timestamp;
    returns how many. ValueError if the transform returned too many or too few frames, or one
    of another size."""
    written = 0
    for rgb in outputs:
        if not timestamps:
            raise ValueError(f"{source}: the transform returned more frames than it was given")
        if rgb.shape != shape or rgb.dtype != np.uint8:
            raise ValueError(f"{source}: a transformed frame is {rgb.dtype} {rgb.shape}, expected uint8 {shape}")
        writer.write(rgb, timestamps.pop(0))
        written += 1
        if on_frame is not None:
            on_frame()
    if timestamps:
        raise ValueError(f"{source}: the transform returned {written} frames of {written + len(timestamps)}")
    return written


# Lightness of a decoded frame. A gray clip (every chroma sample neutral, as a scan of old film
# stored as YUV is) is read from its luma plane through a 256-entry table: the frame's gray
# value is its luma on the full 0..255 scale, exactly what an RGB conversion would give on
# every channel, without converting. Any other frame is converted to RGB and measured.
_PLANAR_YUV8 = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p", "yuvj440p", "yuv411p", "yuv410p"}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG


def _plane(frame, index: int, width: int, height: int) -> np.ndarray:
    plane = frame.planes[index]
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


@functools.lru_cache(maxsize=2)
def _luma_table(full_range: bool) -> np.ndarray:
    """CIELAB L of each 8-bit luma value (float32 ``(256,)``), limited (16..235) or full range."""
    from tinct.color import gray_to_lightness

    luma = np.arange(256, dtype=np.float64)
    gray = luma if full_range else (luma - 16) * 255 / 219
    return gray_to_lightness(np.clip(np.round(gray), 0, 255).astype(np.uint8)).astype(np.float32)


def frame_lightness(frame) -> np.ndarray:
    """float32 CIELAB L ``(H, W)`` of a decoded PyAV video frame (colour frames: of their RGB)."""
    from tinct.color import cielab_lightness

    name = frame.format.name
    if name == "gray":
        return _luma_table(True)[_plane(frame, 0, frame.width, frame.height)]
    if name in _PLANAR_YUV8:
        chroma = [_plane(frame, i, frame.planes[i].width, frame.planes[i].height) for i in (1, 2)]
        neutral = all(int(np.abs(plane.astype(np.int16) - 128).max()) <= 1 for plane in chroma)
        if neutral:
            full = name.startswith("yuvj") or frame.color_range == _FULL_RANGE
            return _luma_table(full)[_plane(frame, 0, frame.width, frame.height)]
    return cielab_lightness(_rgb_of(frame))
