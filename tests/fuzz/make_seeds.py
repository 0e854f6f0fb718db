# Provenance of the fuzz seeds in tests/fuzz/<target>/ (run once from the repository root;
# nothing in the build or the tests runs it). Seeds are small valid inputs taken from the
# project's own files, so the fuzzer starts from the formats' real shapes.
import json, os, struct, shutil, glob

def out(target, name, data):
    d = f"tests/fuzz/{target}"
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# st: the three smallest tensors of each test fixture model, offsets rewritten
for m in ["llama-dense", "mixtral", "qwen3-dense", "qwen3-moe"]:
    raw = open(f"tests/fixtures/{m}/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    meta = hdr.pop("__metadata__", None)
    small = sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0])[:3]
    body, new, off = b"", {}, 0
    for k, v in small:
        a, b = v["data_offsets"]
        chunk = raw[8 + n + a:8 + n + b]
        new[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [off, off + len(chunk)]}
        body += chunk
        off += len(chunk)
    if meta is not None:
        new["__metadata__"] = meta
    h = json.dumps(new).encode()
    h += b" " * (-len(h) % 8)
    out("st", f"{m}.safetensors", struct.pack("<Q", len(h)) + h + body)

# st_index: indexes naming the two one-tensor shards the target writes (a.safetensors, b...)
out("st_index", "two-shards.json", json.dumps({"metadata": {"total_size": 16}, "weight_map": {
    "model.a.weight": "a.safetensors", "model.b.weight": "b.safetensors"}}, indent=2))
out("st_index", "one-shard.json", json.dumps({"weight_map": {"model.a.weight": "a.safetensors"}}))

# gguf: a minimal GGUF v3 by the layout of io/gguf.h: three KVs (a string, the alignment, a
# string array) and one F32 tensor of 8 values
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b
kv = (gstr("general.architecture") + struct.pack("<I", 8) + gstr("llama") +
      gstr("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32) +
      gstr("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + gstr("a") + gstr("b"))
ti = gstr("blk.0.attn_q.weight") + struct.pack("<I", 1) + struct.pack("<Q", 8) + struct.pack("<IQ", 0, 0)
head = b"GGUF" + struct.pack("<IQQ", 3, 1, 3) + kv + ti
head += b"\0" * (-len(head) % 32)
out("gguf", "tiny.gguf", head + struct.pack("<8f", *range(8)))

# hfcfg: every config.json of the project
for p in glob.glob("tests/fixtures/*/config.json") + ["models/vbrlab-moe-tiny/config.json"]:
    out("hfcfg", p.split("/")[-2] + ".json", open(p, "rb").read())

# tok: the embedded model's tokenizer.json cut to its first 400 ids and the merges among them
t = json.load(open("models/vbrlab-moe-tiny/tokenizer.json"))
keep = {k: v for k, v in t["model"]["vocab"].items() if v < 400}
t["model"]["vocab"] = keep
t["model"]["merges"] = [m for m in t["model"]["merges"]
                        if m[0] in keep and m[1] in keep and m[0] + m[1] in keep]
out("tok", "tiny-400.json", json.dumps(t, ensure_ascii=False))

# ini: the project's experiment configs
for p in glob.glob("experiments/*.ini") + ["tests/data/run-tiny.ini"]:
    out("ini", os.path.basename(p), open(p, "rb").read())

# problem: the format of alloc/solve.h, small
out("problem", "two-sets.txt", "# item n_weights option bpw d_en d_zh\n"
    "blk.0.attn_q 4096 q2 2.5 0.30 0.40\nblk.0.attn_q 4096 q4 4.5 0.05 0.06\n"
    "blk.0.ffn_down 8192 q2 2.5 0.50 0.20\nblk.0.ffn_down 8192 q3 3.5 0.20 0.10\n"
    "blk.0.ffn_down 8192 q4 4.5 0.08 0.04\nmodel.layers.1.mlp.down_proj.weight 2048 q2 2.5 1 1\n"
    "model.layers.1.mlp.down_proj.weight 2048 q4 4.5 0.1 0.1\n")
out("problem", "declared.txt", "a 100\nb 50\na 100 x 2 0.5\na 100 y 4 0.125\nb 50 x 2 0.25\n")

# corpus: the first documents of two corpora (\x1e-separated)
for p in ["data/corpus/en.calib.txt", "data/corpus/zh.calib.txt"]:
    raw = open(p, "rb").read()
    cut = raw.find(b"\x1e", 1500)
    out("corpus", os.path.basename(p), raw[:cut + 1 if cut > 0 else 2000])

# spec: the set grammar of analysis/calib.h
for i, s in enumerate(["en=data/corpus/en.calib.txt,seqs=4,len=32,seed=7",
                       "half=data/corpus/en.calib.txt,seqs=2,skip=2",
                       "m=mix:en*0.5+zh*1.5,seqs=8,len=64", "u=noise:uniform,seqs=3",
                       "b=noise:bytes", "s=noise:shuffle:en", "t=self:T=0.8,seqs=2,len=16",
                       "h=entropy:en:high", "x=seed=18446744073709551615"]):
    out("spec", f"spec{i}.txt", s)

# store: edit scripts for the template store of tests/fuzz/targets.c (none, one value, one
# reshape, one string attribute)
out("store", "no-edit.bin", b"")
out("store", "value.bin", bytes([0, 3]) + struct.pack("<d", 0.75))
out("store", "reshape.bin", bytes([2, 5]) + struct.pack("<q", 4))
out("store", "attr.bin", bytes([3, 1, 5]) + b"en\nzh")
