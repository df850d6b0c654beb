"""One Live connection on the reference server: protocol state, end-pointing, replies.

User turns are found the way Google's automatic activity detection (high sensitivities)
finds them: any speech it receives, even a fragment, opens a turn, and `silenceDurationMs`
of quiet after it (the setup's, else the server's `silence_ms`) ends it. pymicro-vad judges
the audio, primed with silence at connect so the first words of a connection count too;
time is counted in samples, so a test may send audio faster than real time and still get
the same turns. With automatic detection disabled, `activityStart` / `activityEnd` alone
open and close turns. Each turn is recorded (`ReferenceServer.turn_log`) with where it
began and ended in the connection's audio and when its reply started.
A reply is a recorded WAV streamed as Google streams one: 40 ms parts, faster than real
time, `generationComplete`, then `turnComplete` once playback would be over. Speech that
starts while a reply is still due to be heard interrupts it, unless the setup asked for
NO_INTERRUPTION; then the turn waits for the reply to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soxr
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from pivox.audio.vad import STEP_BYTES, SpeechDetector
from pivox.audio.wavfile import read_wav
from pivox.core.formats import MIC_RATE, MODEL_MIME, MODEL_RATE, SAMPLE_BYTES, frame_bytes
from pivox.core.models import GEMINI_31
from pivox.link.codec import b64encode, parse_frame
from pivox.reference import rules
from pivox.reference.faults import hooks_for
from pivox.reference.rules import ProtocolError, SessionConfig

if TYPE_CHECKING:
    from pivox.reference.server import ReferenceServer

log = logging.getLogger("pivox.reference")

VOICES = Path(__file__).with_name("voices")
CHUNK_MS = 40
CHUNK_BYTES = frame_bytes(CHUNK_MS, MODEL_RATE)
TOKENS_PER_AUDIO_S = 32  # Gemini's rate for audio; usage figures are approximate
START_MS = 20  # voiced audio that opens a turn: a fragment is enough, as at high sensitivity
PRIME_STEPS = 80  # 10 ms steps of silence pymicro-vad needs before it judges anything


@dataclass
class TurnRecord:
    """One user turn as the server saw it, in 16 kHz samples of the connection's audio."""

    connection: int
    turn: int
    why: str  # "silence", "activityEnd", "audioStreamEnd", "clientContent"
    speech_from: int | None  # where its first speech (or activityStart) was heard
    ended_at: int
    reply_at: int | None = None  # samples received when its reply started
    reply_text: str = ""


@dataclass(frozen=True)
class Reply:
    name: str
    text: str
    pcm: bytes  # s16le mono, 24 kHz

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / (MODEL_RATE * SAMPLE_BYTES)


def load_replies(reply_dir: str | Path | None = None) -> list[Reply]:
    """The replies in `reply_dir` (default: the bundled voices), in manifest order.

    A directory without replies.json serves every *.wav in name order, with no text.
    """
    folder = Path(reply_dir) if reply_dir is not None else VOICES
    manifest = folder / "replies.json"
    if manifest.exists():
        entries = json.loads(manifest.read_text(encoding="utf-8"))["replies"]
    else:
        entries = [{"file": p.name, "text": ""} for p in sorted(folder.glob("*.wav"))]
    replies = [Reply(e["file"], e.get("text", ""), read_wav(folder / e["file"], MODEL_RATE))
               for e in entries]
    if not replies:
        raise ValueError(f"{folder}: no reply WAV files")
    return replies


class ServerSession:
    """One connection: the protocol state, the end-pointer and the reply in progress.

    Faults reach it only through `self.faults` (see `faults.Hooks`).
    """

    def __init__(self, server: ReferenceServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.cfg: SessionConfig | None = None
        self.detector = self._detector(server.silence_ms)
        self.speech_from: int | None = None  # start of the turn being heard
        self.connection = server.stats.connections
        self.samples_in = 0  # 16 kHz samples of user audio: the end-pointer's clock
        self.turns = 0
        self.replied = 0  # replies started; picks the next recorded reply
        self.prompt_tokens = 0
        self.in_activity = False  # between activityStart and activityEnd
        self.pending = 0  # turns that ended while a reply could not be interrupted
        self.reply_task: asyncio.Task[None] | None = None
        self.reply_phase = ""  # "streaming", "holding" (waiting for playback), "closing"
        self._resamplers: dict[int, soxr.ResampleStream] = {}
        self.faults = hooks_for(server.faults, server.stats.connections)
        self.declared: set[str] = set()  # function names the client declared in setup
        self.tool_answered = asyncio.Event()

    @staticmethod
    def _detector(silence_ms: int) -> SpeechDetector:
        detector = SpeechDetector(start_ms=START_MS, end_ms=max(10, silence_ms))
        for _ in range(PRIME_STEPS):
            detector.process(bytes(STEP_BYTES))
        return detector

    async def run(self) -> None:
        async for raw in self.ws:
            try:
                await self._receive(raw)
            except ProtocolError as exc:
                self.server.stats.frames_rejected += 1
                log.info("closing with %d: %s", exc.code, exc.reason)
                await self.ws.close(exc.code, exc.reason)
                return

    async def _send(self, obj: dict[str, Any]) -> None:
        if await self.faults.silenced(self.ws):
            return
        await self.ws.send(json.dumps(obj, separators=(",", ":")).encode())  # binary, as Google

    # -- client messages
    async def _receive(self, raw: str | bytes) -> None:
        try:
            msg = parse_frame(raw)
        except ValueError as exc:
            raise ProtocolError(rules.INVALID, f"Invalid JSON payload received. {exc}") from None
        self.server.record(msg)
        kind = rules.message_kind(msg)
        if self.cfg is None:
            if kind != "setup":
                raise ProtocolError(rules.INVALID, f"the first message must be setup, not {kind}")
            await self._setup(msg["setup"])
        elif kind == "setup":
            raise ProtocolError(rules.INVALID, "setup may only be sent once, first")
        elif kind == "realtimeInput":
            await self._realtime(msg["realtimeInput"])
        elif kind == "clientContent":
            if rules.check_client_content(msg["clientContent"]):
                self.prompt_tokens += len(json.dumps(msg["clientContent"])) // 4
                await self._client_turn()
        else:
            self.server.stats.tool_responses += rules.check_tool_response(
                msg["toolResponse"], self.cfg.profile, self.cfg.model)
            self.tool_answered.set()

    async def _setup(self, body: Any) -> None:
        self.cfg = cfg = rules.check_setup(body)
        if cfg.silence_ms is not None:
            self.detector = self._detector(cfg.silence_ms)
        self.declared = {d.get("name") for t in body.get("tools") or []
                         for d in t.get("functionDeclarations") or []}
        self.server.stats.setups += 1
        resumed = self.server.resume(cfg.handle) if self.faults.may_resume() else None
        if resumed is not None:
            self.turns = self.replied = resumed
        log.info("setup: model %s, voice %s, %s%s", cfg.model, cfg.voice or "default",
                 "automatic activity detection" if cfg.automatic_activity
                 else "explicit activity", "" if resumed is None else ", resumed")
        await self._send({"setupComplete": {}})
        if resumed is not None:
            self.server.stats.resumed += 1
        if cfg.resumption:  # a handle from the start, so even a quiet session can resume
            handle = f"ref-{secrets.token_hex(8)}"
            self.server.remember(handle, self.turns)
            await self._send({"sessionResumptionUpdate": {"newHandle": handle,
                                                          "resumable": True}})
        self.faults.setup_complete(self.ws)

    async def _realtime(self, body: dict[str, Any]) -> None:
        assert self.cfg is not None
        kind = rules.realtime_kind(body)
        if kind in ("audio", "mediaChunks"):
            blob = body[kind]
            where = f"realtimeInput.{kind}"
            if kind == "mediaChunks":  # deprecated list form: only the first element counts
                if not isinstance(blob, list) or not blob:
                    raise ProtocolError(rules.INVALID, "realtimeInput.mediaChunks: empty")
                blob, where = blob[0], "realtimeInput.mediaChunks[0]"
            pcm, rate = rules.decode_audio(blob, where)
            await self._audio(pcm, rate)
        elif kind in ("activityStart", "activityEnd"):
            if self.cfg.automatic_activity:
                raise ProtocolError(rules.INVALID, "Explicit activity control is not supported "
                                                   "when automatic activity detection is enabled.")
            if kind == "activityStart" and not self.in_activity:
                self.in_activity = True
                self.speech_from = self.samples_in
                await self._speech_started()
            elif kind == "activityEnd" and self.in_activity:
                self.in_activity = False
                await self._turn_ended("activityEnd")
        elif kind == "audioStreamEnd" and self.cfg.automatic_activity and self.detector.in_speech:
            self.detector.reset()  # the mic closed mid-utterance: that ends the turn
            await self._turn_ended("audioStreamEnd")

    async def _audio(self, pcm: bytes, rate: int) -> None:
        assert self.cfg is not None
        self.server.stats.audio_bytes_in += len(pcm)
        if rate != MIC_RATE:
            stream = self._resamplers.get(rate)
            if stream is None:
                stream = self._resamplers[rate] = soxr.ResampleStream(
                    rate, MIC_RATE, 1, dtype="int16")
            pcm = stream.resample_chunk(np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2")).tobytes()
        if self.server.keep_audio:
            self.server.heard.setdefault(self.connection, bytearray()).extend(pcm)
        self.samples_in += len(pcm) // 2
        self.prompt_tokens += round(len(pcm) / SAMPLE_BYTES / MIC_RATE * TOKENS_PER_AUDIO_S)
        if not self.cfg.automatic_activity:
            return
        # 10 ms at a time, so that a start and an end inside one long chunk both count.
        for i in range(0, len(pcm), STEP_BYTES):
            event = self.detector.process(pcm[i : i + STEP_BYTES])
            if event == "start":
                at = self.samples_in - (len(pcm) - i) // 2 - START_MS * MIC_RATE // 1000
                self.speech_from = max(0, at)
                await self._speech_started()
            elif event == "end":
                await self._turn_ended("silence")

    # -- turns
    async def _speech_started(self) -> None:
        assert self.cfg is not None
        log.debug("speech started at %.2f s of audio", self.samples_in / MIC_RATE)
        if self.reply_phase in ("streaming", "holding") and self.cfg.interrupts:
            await self._interrupt()

    async def _turn_ended(self, why: str) -> None:
        self.turns += 1
        self.server.stats.turns += 1
        log.info("turn %d ended (%s) at %.2f s of audio", self.turns, why,
                 self.samples_in / MIC_RATE)
        self.server.turn_log.append(TurnRecord(self.connection, self.turns, why,
                                               self.speech_from, self.samples_in))
        self.speech_from = None
        self._answer()

    async def _client_turn(self) -> None:
        """A completed `clientContent` turn: it interrupts any reply, whatever the setting."""
        if self.reply_phase in ("streaming", "holding"):
            await self._interrupt()
        await self._turn_ended("clientContent")

    def _answer(self) -> None:
        if self.reply_task is not None:  # a reply that may not be interrupted is running
            self.pending += 1
            return
        self.reply_task = asyncio.create_task(self._reply_loop())

    async def _interrupt(self) -> None:
        await self.cancel_reply()
        self.pending = 0  # the new speech supersedes turns queued behind the old reply
        self.server.stats.interruptions += 1
        self.server.stats.last_interrupted_at = time.monotonic()
        log.info("interrupted by the user (turn %d)", self.turns)
        await self._send({"serverContent": {"interrupted": True}})
        await self._send({"serverContent": {"turnComplete": True}})

    async def cancel_reply(self) -> None:
        task, self.reply_task = self.reply_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self.reply_phase = ""

    # -- replies
    async def _call_tool(self) -> None:
        """Ask the client to run a function before answering, as a model would. Models
        with synchronous tools wait for the toolResponse (bounded) before they speak."""
        assert self.cfg is not None
        if self.server.tool_call is None or self.server.tool_call[0] not in self.declared:
            return
        name, args = self.server.tool_call
        self.tool_answered.clear()
        call_id = f"fc-{secrets.token_hex(4)}"
        await self._send({"toolCall": {"functionCalls": [{"id": call_id, "name": name,
                                                          "args": args}]}})
        if not self.cfg.profile.async_tools:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.tool_answered.wait(), 5.0)

    async def _reply_loop(self) -> None:
        try:
            while True:
                await self._reply()
                if not self.pending:
                    break
                self.pending -= 1
        except ConnectionClosed:
            pass
        except Exception:  # a bug here must not leave the client waiting for turnComplete
            log.exception("reply failed")
            await self.ws.close(1011, "Internal error encountered.")
        finally:
            if self.reply_task is asyncio.current_task():
                self.reply_task = None
                self.reply_phase = ""

    async def _reply(self) -> None:
        assert self.cfg is not None
        cfg, server = self.cfg, self.server
        reply = server.replies[self.replied % len(server.replies)]
        self.replied += 1
        server.stats.replies += 1
        self.reply_phase = "streaming"
        log.info("reply to turn %d: %s (%.1f s)", self.turns, reply.name, reply.duration_s)
        record = next((r for r in reversed(server.turn_log) if r.connection == self.connection
                       and r.reply_at is None), None)
        if record is not None:
            record.reply_at, record.reply_text = self.samples_in, reply.text
        if cfg.resumption:  # Google's "not resumable now" during generation
            await self._send({"sessionResumptionUpdate": {"newHandle": "", "resumable": False}})
        await self.faults.before_reply(self.ws)
        await self._call_tool()
        loop = asyncio.get_running_loop()
        started = loop.time()
        step = CHUNK_MS / 1000 / server.pace if server.pace > 0 else 0.0
        # 3.1 packs several parts into one serverContent; clients must handle every part.
        per_frame = 2 if cfg.profile is GEMINI_31 else 1
        words = reply.text.split()
        said = 0
        chunks = [reply.pcm[i : i + CHUNK_BYTES] for i in range(0, len(reply.pcm), CHUNK_BYTES)]
        for k in range(0, len(chunks), per_frame):
            await asyncio.sleep(max(0.0, started + k * step - loop.time()))
            group = chunks[k : k + per_frame]
            content: dict[str, Any] = {"modelTurn": {"parts": [
                {"inlineData": {"mimeType": MODEL_MIME, "data": b64encode(c)}} for c in group]}}
            transcript = None
            if cfg.output_transcription and words:
                upto = math.ceil(len(words) * (k + len(group)) / len(chunks))
                if upto > said:
                    transcript = {"text": (" " if said else "") + " ".join(words[said:upto])}
                    said = upto
            if transcript and per_frame > 1:
                content["outputTranscription"] = transcript
                transcript = None
            await self._send({"serverContent": content})
            if transcript:
                await self._send({"serverContent": {"outputTranscription": transcript}})
        self.reply_phase = "holding"
        await self._send({"serverContent": {"generationComplete": True}})
        if server.playback_hold:  # Google waits for real-time playback before turnComplete
            await asyncio.sleep(max(0.0, started + reply.duration_s - loop.time()))
        self.reply_phase = "closing"
        response_tokens = round(reply.duration_s * TOKENS_PER_AUDIO_S)
        await self._send({"serverContent": {"turnComplete": True}, "usageMetadata": {
            "promptTokenCount": self.prompt_tokens, "responseTokenCount": response_tokens,
            "totalTokenCount": self.prompt_tokens + response_tokens}})
        if cfg.resumption:
            handle = f"ref-{secrets.token_hex(8)}"
            server.remember(handle, self.turns)
            await self._send({"sessionResumptionUpdate": {"newHandle": handle,
                                                          "resumable": True}})
        log.info("turn %d complete", self.turns)
