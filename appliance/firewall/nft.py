"""libnftables through ctypes: one call is one atomic transaction, in this process's netns.

Debian's python3-nftables binds only the system Python, so we call the C library
(package libnftables1, part of nftables) directly; the API is five functions.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import tempfile
import threading


class NftError(Exception):
    """nft refused a command; the message is nft's own, with its caret marks."""


class Nft:
    _lib = None

    def __init__(self, json_output: bool = False) -> None:
        lib = self._load()
        self._ctx = lib.nft_ctx_new(0)
        if json_output:
            lib.nft_ctx_output_set_flags(self._ctx, 1 << 4)     # NFT_CTX_OUTPUT_JSON
        lib.nft_ctx_buffer_output(self._ctx)
        lib.nft_ctx_buffer_error(self._ctx)
        self._lock = threading.Lock()      # a context's buffers are not thread-safe

    @classmethod
    def _load(cls):
        if cls._lib is None:
            name = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError as e:
                raise NftError(f"libnftables is not installed (apt install nftables): {e}") from None
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
            for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            cls._lib = lib
        return cls._lib

    def run(self, text: str, check_only: bool = False) -> str:
        """Run nft commands as one transaction; raise NftError (nothing changed) on failure."""
        lib = self._lib
        with self._lock:
            lib.nft_ctx_set_dry_run(self._ctx, check_only)
            try:
                if "\n" in text.strip():      # from a file: nft's errors then name the line
                    with tempfile.NamedTemporaryFile("w", prefix="gcsguard-", suffix=".nft") as f:
                        f.write(text)
                        f.flush()
                        rc = lib.nft_run_cmd_from_filename(self._ctx, f.name.encode())
                else:
                    rc = lib.nft_run_cmd_from_buffer(self._ctx, text.encode())
                out = (lib.nft_ctx_get_output_buffer(self._ctx) or b"").decode()
                err = (lib.nft_ctx_get_error_buffer(self._ctx) or b"").decode()
            finally:
                lib.nft_ctx_set_dry_run(self._ctx, False)
        if rc != 0:
            raise NftError(err.strip() or f"nft failed (rc={rc})")
        return out

    def check(self, text: str) -> None:
        """Like `nft -c -f`: validated by the kernel, committed nowhere."""
        self.run(text, check_only=True)
