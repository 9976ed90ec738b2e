"""The files the benchmarks serve, written the way their producers write them: a detector
stack as a native .b2nd (python-blosc2) and as HDF5 (h5py + hdf5plugin, one frame per
chunk, as Eiger detectors and their gzip-minded users write it), and an HDF5 file with
many small datasets in many groups (a NeXus-like scan collection) for unfold."""

import blosc2
import h5py
import hdf5plugin
import numpy as np

STACK_DSET = "entry/data/data"
H5_KINDS = {
    "bslz4": lambda: hdf5plugin.Bitshuffle(cname="lz4"),
    "gzip": lambda: {"compression": "gzip", "compression_opts": 1, "shuffle": True},
}


def write_b2nd(path, frames):
    """`frames` as a .b2nd, one frame per chunk, ZSTD 1 + shuffle; returns (chunks, blocks, cbytes)."""
    n, h, w = frames.shape
    b2 = blosc2.asarray(frames, chunks=(1, h, w), blocks=(1, min(h, max(1, 65536 // w)), w),
                        urlpath=str(path), mode="w",
                        cparams=blosc2.CParams(codec=blosc2.Codec.ZSTD, clevel=1,
                                               filters=[blosc2.Filter.SHUFFLE]))
    geometry = b2.chunks, b2.blocks, b2.schunk.cbytes
    del b2
    return geometry


def write_h5(path, frames, kind):
    """`frames` as dataset entry/data/data of an HDF5 file, one frame per chunk,
    filtered with `kind` ("bslz4": bitshuffle/LZ4, or "gzip": gzip 1 + shuffle)."""
    n, h, w = frames.shape
    with h5py.File(path, "w") as f:
        f.create_dataset(STACK_DSET, data=frames, chunks=(1, h, w), **H5_KINDS[kind]())


def write_many(path, ndatasets, per_group=10):
    """An HDF5 file of `ndatasets` small chunked gzip datasets with attributes, `per_group`
    to a group; returns {dataset name: data}."""
    rng = np.random.default_rng(1)
    written = {}
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "many small datasets"
        for k in range(ndatasets):
            group = f.require_group(f"entry/scan_{k // per_group:03d}")
            group.attrs["index"] = k // per_group
            data = rng.integers(0, 1000, size=(16, 16), dtype=np.int32)
            name = f"{group.name.lstrip('/')}/d{k % per_group}"
            ds = f.create_dataset(name, data=data, chunks=(8, 16), compression="gzip", compression_opts=1)
            ds.attrs["units"] = "counts"
            ds.attrs["long_name"] = f"counter {k}"
            written[name] = data
    return written
