#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Run with a Python that has numpy, blosc2, h5py and hdf5plugin (the repo's
.venv has them): `.venv/bin/python fuzz/make-seeds.py`. The files are small
valid inputs (the input formats are described at the top of each target in
fuzz/fuzz_targets/); the fuzzer mutates them from there.
"""
import io
import os
import shutil
import struct
import sys
import tarfile
import tempfile
import zipfile

import blosc2
import h5py
import hdf5plugin
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def shape_prefix(shape, chunks):
    """The prefix cat2rs_fuzz::take_shape reads (dims below 64, chunks 1 to 16)."""
    return bytes([len(shape)] + list(shape) + [c - 1 for c in chunks])


def slices():
    cases = [
        ((10, 12), (3, 5), ["1:3, 2:5", "5", ":10, :20", "...", "::-1", "-1, ::2", "0:0", "2:0",
                            "1_000", " +3 ", "..., 1", "::-3, 1::4", "-100:100:7"]),
        ((7,), (2,), ["3", "-8", "::", "1:6:2", "6:0:-2"]),
        ((4, 5, 6), (2, 2, 4), ["1, ..., 2", ":, :, ::-1", "0, 1, 2", "..., ::2"]),
        ((), (), ["", "..."]),
    ]
    n = 0
    for shape, chunks, texts in cases:
        for t in texts:
            put("slice", f"seed{n:02}", shape_prefix(shape, chunks) + t.encode())
            n += 1


def indices():
    cases = [
        ((10, 12), (3, 5), ["[[0, 2, 4], 1]", "[null, [1, 3]]", "[[1, 2], [3, 4]]",
                            '["1:8:2", [0, -1]]', "[[9, 0, 9], [11, 11, 0]]", "[]", "[3]"]),
        ((7,), (2,), ["[[6, 5, 0, 0]]", '["::-2"]', "[-7]"]),
        ((4, 5, 6), (2, 2, 4), ["[[0, 3], null, [5, 0]]", "[1, [2, 3], \"1:3\"]"]),
    ]
    n = 0
    for shape, chunks, texts in cases:
        for t in texts:
            put("indices", f"seed{n:02}", shape_prefix(shape, chunks) + t.encode())
            n += 1


def filters():
    rec = np.zeros(4, dtype=[("a", "<i4"), ("b", "<f8")])
    rec["a"] = [1, 600, 300, -5]
    rec["b"] = [0.5, 0.05, 2.0, -1.0]
    cases = [
        ("[('a', '<i4'), ('b', '<f8')]", "(a < 500) & (b >= .1)", rec.tobytes()),
        ("[('a', '<i4'), ('b', '<f8')]", "~(a == 1) | (b != 2.0)", rec.tobytes()),
        ("[('a', '<i4'), ('b', '<f8')]", "a + 2 * b > -3.5e1", rec.tobytes()),
        ("[('x', '<u2'), ('s', 'S3'), ('f', '<f4', (2,))]", "x >= 3", b"\x01\x00abc" + b"\0" * 8),
        ("{'names': ['t', 'v'], 'formats': ['<M8[s]', '?'], 'offsets': [0, 8], 'itemsize': 9}",
         "v", b"\0" * 18),
        ("[('h', '<f2'), ('c', '<c8')]", "(h < 1) & (h > -1)", b"\0" * 20),
    ]
    for n, (dtype, expr, records) in enumerate(cases):
        put("filter", f"seed{n:02}", dtype.encode() + b"\n" + expr.encode() + b"\n" + records)


def exprs():
    texts = ["(a + 1) * 2", "where(a < 2, a + 50, b * 0.5)", "sqrt(a) ** sin(b)",
             "sum(c, axis=0)", "a[1:3]", "concat([a, a])", "linspace(0, 1, 10)",
             "matmul(c, c.T)", "a.astype('int16')", "arange(5)", "c[::-1, None, ...]",
             "mean(c, axis=1, keepdims=True) - c", "2j * a + ~b", "clip(a, 1, 3) // 0",
             "stack([a, b], axis=0)", "expand_dims(a, axis=0).mT"]
    for n, t in enumerate(texts):
        # The first byte picks the operands' dtypes and shapes (see expr.rs).
        put("expr", f"seed{n:02}", bytes([(n * 37 + 11) % 256]) + t.encode())


def frames():
    """Small frames written by python-blosc2; returns them by name for the
    other targets."""
    out = {}
    a = blosc2.asarray(np.arange(20, dtype="<i4").reshape(4, 5), chunks=(2, 3), blocks=(1, 2))
    out["i4-2d.b2nd"] = a.to_cframe()
    f = blosc2.asarray(np.linspace(0, 1, 30, dtype="<f4").reshape(2, 3, 5), chunks=(1, 2, 5),
                       blocks=(1, 1, 5), cparams={"codec": blosc2.Codec.ZSTD, "clevel": 5})
    f.vlmeta["note"] = "a float32 cube"
    out["f4-3d.b2nd"] = f.to_cframe()
    rec = np.zeros(6, dtype=[("a", "<i4"), ("b", "<f8")])
    rec["a"] = np.arange(6)
    out["record.b2nd"] = blosc2.asarray(rec, chunks=(4,), blocks=(2,)).to_cframe()
    out["zeros.b2nd"] = blosc2.zeros((100,), dtype="<u2", chunks=(10,), blocks=(5,)).to_cframe()
    out["uninit.b2nd"] = blosc2.uninit((8, 8), dtype="<i8", chunks=(4, 4), blocks=(2, 2)).to_cframe()
    out["scalar.b2nd"] = blosc2.asarray(np.array(7, dtype="<c16")).to_cframe()
    out["lz4-bitshuffle.b2nd"] = blosc2.asarray(
        np.arange(64, dtype="<u8"), chunks=(16,), blocks=(8,),
        cparams={"codec": blosc2.Codec.LZ4, "filters": [blosc2.Filter.BITSHUFFLE]}).to_cframe()
    sc = blosc2.SChunk(chunksize=40, data=np.arange(25, dtype="<i4").tobytes(),
                       cparams={"typesize": 4})
    sc.vlmeta["kind"] = "frame"
    out["sc.b2frame"] = sc.to_cframe()
    text = b"A regular file, stored as a Blosc2 super-chunk of bytes.\n" * 3
    out["notes.txt.b2"] = blosc2.SChunk(chunksize=64, data=text, cparams={"typesize": 1}).to_cframe()
    return out


def h5_files(tmp):
    out = {}
    x = np.arange(24, dtype="<i4").reshape(4, 6)
    specs = [
        ("plain.h5", {}),
        ("gzip.h5", {"compression": "gzip", "chunks": (2, 3)}),
        ("lzf.h5", {"compression": "lzf", "chunks": (2, 6)}),
        ("blosc2.h5", {"chunks": (2, 3), **hdf5plugin.Blosc2()}),
        ("blosc.h5", {"chunks": (4, 3), **hdf5plugin.Blosc()}),
        ("lz4.h5", {"chunks": (2, 3), **hdf5plugin.LZ4()}),
        ("zstd.h5", {"chunks": (2, 3), **hdf5plugin.Zstd()}),
        ("bitshuffle.h5", {"chunks": (4, 6), **hdf5plugin.Bitshuffle()}),
        ("shuffle-fletcher.h5", {"chunks": (2, 3), "shuffle": True, "fletcher32": True}),
    ]
    for name, kw in specs:
        p = os.path.join(tmp, name)
        with h5py.File(p, "w", libver="latest" if name == "plain.h5" else "earliest") as f:
            f.create_dataset("x", data=x, **kw)
            if name == "plain.h5":
                g = f.create_group("g")
                g.attrs["title"] = "a group"
                g.create_dataset("s", data=np.array([b"ab", b"cde"]))
                g.create_dataset("c", data=np.zeros(3, dtype=[("a", "<i2"), ("b", "<f4")]))
                f.create_dataset("scalar", data=3.5)
                f["link"] = h5py.SoftLink("/x")
                f["ext"] = h5py.ExternalLink("other.h5", "/y")
        with open(p, "rb") as fh:
            out[name] = fh.read()
    return out


# Filter ids in the order fuzz_targets/hdf5_filters.rs lists them.
FILTER_IDS = [1, 2, 3, 4, 5, 6, 32000, 32001, 32004, 32008, 32015, 32026]


def filter_chunks(tmp):
    """Raw filtered chunks, each as the hdf5_filters target reads them:
    filter, element size, client data, chunk (the last filter applied)."""
    n = 0
    for name in ["gzip.h5", "lzf.h5", "blosc2.h5", "blosc.h5", "lz4.h5", "zstd.h5",
                 "bitshuffle.h5", "shuffle-fletcher.h5"]:
        with h5py.File(os.path.join(tmp, name), "r") as f:
            ds = f["x"]
            plist = ds.id.get_create_plist()
            nf = plist.get_nfilters()
            if nf == 0:
                continue
            # The last filter written is the first undone: the chunk as stored.
            code, _flags, values, _name = plist.get_filter(nf - 1)
            if nf > 1:
                continue  # the raw chunk went through several filters
            _mask, chunk = ds.id.read_direct_chunk((0, 0))
            cd = b"".join(struct.pack("<I", v) for v in values[:7])
            put("hdf5_filters", f"seed{n:02}",
                bytes([FILTER_IDS.index(code), ds.dtype.itemsize, len(values[:7])]) + cd + chunk)
            n += 1


def b2z_files(tmp):
    out = {}
    p = os.path.join(tmp, "tree.b2z")
    with blosc2.TreeStore(p, mode="w") as ts:
        ts["/a"] = np.arange(10, dtype="<i4")
        ts["/g/b"] = np.linspace(0, 1, 6, dtype="<f8").reshape(2, 3)
        ts.vlmeta["title"] = "a tree"
    out["tree.b2z"] = open(p, "rb").read()
    p = os.path.join(tmp, "dict.b2z")
    with blosc2.DictStore(p, mode="w") as ds:
        ds["/x"] = np.arange(4, dtype="<u2")
        ds["/y"] = blosc2.SChunk(chunksize=16, data=b"0123456789abcdef" * 2)
    out["dict.b2z"] = open(p, "rb").read()
    return out


def archives(frames):
    out = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("readme.txt", "hello\n")
        z.writestr("data/i4.b2nd", frames["i4-2d.b2nd"])
        z.writestr(".hidden", "skipped")
    out["zip"] = buf.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a/b/sc.b2frame", frames["sc.b2frame"])
    out["zip-stored"] = buf.getvalue()
    for kind, mode in [("tar", "w"), ("tar.gz", "w:gz")]:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as t:
            for name, data in [("notes.txt", b"some notes\n"), ("d/zeros.b2nd", frames["zeros.b2nd"])]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            d = tarfile.TarInfo("d")
            d.type = tarfile.DIRTYPE
            t.addfile(d)
        out[kind] = buf.getvalue()
    return out


def multipart(boundary, parts):
    body = b""
    for name, filename, ctype, data in parts:
        body += b"--" + boundary + b"\r\n"
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        body += f"Content-Disposition: {disp}\r\n".encode()
        if ctype:
            body += f"Content-Type: {ctype}\r\n".encode()
        body += b"\r\n" + data + b"\r\n"
    return boundary + b"\n" + body + b"--" + boundary + b"--\r\n"


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    slices()
    indices()
    filters()
    exprs()
    fr = frames()
    for name, data in fr.items():
        put("blosc2_frame", name, data)
    suffix = {".b2nd": 0, ".b2frame": 1, ".b2": 2, ".h5": 3}
    for name in ["i4-2d.b2nd", "record.b2nd", "zeros.b2nd", "scalar.b2nd", "sc.b2frame",
                 "notes.txt.b2"]:
        put("stored_file", name, bytes([suffix[os.path.splitext(name)[1]]]) + fr[name])
    with tempfile.TemporaryDirectory() as tmp:
        h5 = h5_files(tmp)
        for name, data in h5.items():
            put("hdf5", name, data)
        for name in ["plain.h5", "blosc2.h5", "bitshuffle.h5"]:
            put("stored_file", name, bytes([3]) + h5[name])
        put("stored_file", "plain-no-suffix", bytes([4]) + h5["gzip.h5"])
        put("stored_file", "text-no-suffix", bytes([4]) + b"just some text\n")
        filter_chunks(tmp)
        b2z = b2z_files(tmp)
        for name, data in b2z.items():
            put("b2z", name, data)
    ar = archives(fr)
    for n, kind in enumerate(["zip", "tar", "tar.gz"]):
        put("archive", kind, bytes([n]) + ar[kind])
    put("archive", "zip-stored", bytes([0]) + ar["zip-stored"])
    b = b"cat2rsBoundary42"
    put("multipart", "b2nd", multipart(b, [("file", "x.b2nd", "application/octet-stream", fr["i4-2d.b2nd"])]))
    put("multipart", "text", multipart(b, [("other", None, None, b"ignored"),
                                          ("file", "notes.txt", "text/plain", b"hello\n")]))
    put("multipart", "frame", multipart(b, [("file", "sc.b2frame", None, fr["sc.b2frame"])]))
    put("multipart", "h5", multipart(b, [("file", "x.h5", None, h5["lzf.h5"])]))
    put("multipart", "b2z", multipart(b, [("file", "d.b2z", None, b2z["dict.b2z"])]))
    put("multipart", "noname", multipart(b"x", [("file", None, None, b"data")]))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(CORPUS) for f in fs)
    print(f"corpus: {total} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
