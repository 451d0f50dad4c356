"""DYAD when things go wrong: no producer, an owner that unloads mid-fetch, two
consumers of one file, a namespace that does not exist."""

from __future__ import annotations

import errno
import os
import sys
import threading

import pytest

from fluxnb import Flux
from fluxnb.dyad import DyadError
from fluxnb.job import JobspecV1, event_wait, result, submit

from tests.conftest import wait_for

from .conftest import dyad_ctx


def _wait(cond, timeout=10.0):
    return wait_for(cond, timeout, "the dyad service's state")


def _consume_in_thread(cons, path):
    """Start ``cons.consume(path)`` in a thread; its answer or error lands in the dict."""
    outcome = {}

    def consume():
        try:
            outcome["answer"] = cons.consume(path)
        except Exception as exc:
            outcome["error"] = exc

    t = threading.Thread(target=consume)
    t.start()
    return t, outcome


def test_never_produced_waits_and_cancels(dyad_instance, namespace):
    inst = dyad_instance
    cons = dyad_ctx(inst, 1, namespace)
    env = dict(os.environ, DYAD_KVS_NAMESPACE=namespace, DYAD_PATH_CONSUMER=str(cons.cons_path))
    with Flux(inst.uri) as h:
        h.rpc("resource.drain", {"targets": "0"}, nodeid=0).get()
        try:
            js = JobspecV1.from_command(["flux", "dyad", "consume", "-v", f"{cons.cons_path}/never.txt"],
                                        environment=env)
            job = submit(h, js)
            event_wait(h, job, "start")
        finally:
            h.rpc("resource.undrain", {"targets": "0"}, nodeid=0).get()
        # the consumer's state says what it waits for
        waiting = _wait(lambda: cons.stats()["consumers"])
        assert waiting[0]["upath"] == "never.txt" and waiting[0]["state"] == "waiting"
        assert waiting[0]["namespace"] == namespace
        from fluxnb.job import cancel
        cancel(h, job)
        assert result(h, job)["result"] == "CANCELED"
        _wait(lambda: not cons.stats()["consumers"])          # the wait went with the job
    assert not (cons.cons_path / "never.txt").exists()
    cons.finalize()


def test_consume_timeout_cancels_the_wait(dyad_instance, namespace):
    cons = dyad_ctx(dyad_instance, 1, namespace)
    with pytest.raises(TimeoutError):
        cons.consume(cons.cons_path / "late.txt", timeout=0.3)
    _wait(lambda: not cons.stats()["consumers"])
    cons.finalize()


def test_owner_unloads_mid_fetch(dyad_instance, namespace):
    inst = dyad_instance
    with Flux(inst.uri) as h:
        # a slow link on rank 0: 64 KiB chunks, 20 ms apart (a 2 MiB file takes ~0.6 s)
        h.rpc("module.remove", {"name": "dyad"}, nodeid=0).get()
        h.rpc("module.load", {"name": "dyad", "args": ["--chunk-size", "65536", "--throttle", "0.02"]},
              nodeid=0).get()
        prod, cons = dyad_ctx(inst, 0, namespace), dyad_ctx(inst, 1, namespace)
        watcher = dyad_ctx(inst, 1, namespace)     # a handle is not shared between threads
        data = os.urandom(2 << 20)
        (prod.prod_path / "big.bin").write_bytes(data)
        prod.produce(prod.prod_path / "big.bin")
        t, outcome = _consume_in_thread(cons, cons.cons_path / "big.bin")
        _wait(lambda: any(f["received"] for f in watcher.stats()["fetching"]))
        h.rpc("module.remove", {"name": "dyad"}, nodeid=0).get()
        t.join(10)
        assert isinstance(outcome.get("error"), DyadError), outcome
        assert outcome["error"].errno == errno.ENOSYS
        assert "unloaded on rank 0" in str(outcome["error"])
        # never a partial file, not even a temporary one
        assert not (cons.cons_path / "big.bin").exists()
        assert not [f for f in os.listdir(cons.cons_path) if "big.bin" in f]
        # with the module back, the same consume succeeds
        h.rpc("module.load", {"name": "dyad", "args": []}, nodeid=0).get()
        cons.consume(cons.cons_path / "big.bin")
        assert (cons.cons_path / "big.bin").read_bytes() == data
        for d in (prod, cons, watcher):
            d.finalize()


def test_file_truncated_mid_fetch_fails_that_fetch_alone(dyad_instance, namespace):
    # brokers share this process, so chunks travel from a read-only mapping of the
    # file; cutting the file short under it must fail the fetch, never the broker
    inst = dyad_instance
    with Flux(inst.uri) as h:
        h.rpc("module.remove", {"name": "dyad"}, nodeid=0).get()
        h.rpc("module.load", {"name": "dyad", "args": ["--chunk-size", "262144", "--throttle", "0.05"]},
              nodeid=0).get()
        try:
            prod, cons = dyad_ctx(inst, 0, namespace), dyad_ctx(inst, 1, namespace)
            watcher = dyad_ctx(inst, 1, namespace)
            src = prod.prod_path / "cut.bin"
            src.write_bytes(os.urandom(4 << 20))
            prod.produce(src)
            t, outcome = _consume_in_thread(cons, cons.cons_path / "cut.bin")
            _wait(lambda: any(f["received"] for f in watcher.stats()["fetching"]))
            os.truncate(src, 1000)
            t.join(20)
            assert isinstance(outcome.get("error"), DyadError), outcome
            assert "shrank" in str(outcome["error"]) and "while being sent" in str(outcome["error"])
            assert not (cons.cons_path / "cut.bin").exists()
            assert not [f for f in os.listdir(cons.cons_path) if "cut.bin" in f]
            # both ranks still serve, and a whole file still moves
            src2 = prod.prod_path / "whole.bin"
            data = os.urandom(1 << 20)
            src2.write_bytes(data)
            prod.produce(src2)
            cons.consume(cons.cons_path / "whole.bin")
            assert (cons.cons_path / "whole.bin").read_bytes() == data
            for d in (prod, cons, watcher):
                d.finalize()
        finally:
            h.rpc("module.remove", {"name": "dyad"}, nodeid=0).get()
            h.rpc("module.load", {"name": "dyad", "args": ["--mode", "FLUX_RPC"]}, nodeid=0).get()


def test_two_consumers_fetch_once(dyad_instance, namespace):
    inst = dyad_instance
    prod = dyad_ctx(inst, 0, namespace)
    consumers = [dyad_ctx(inst, 1, namespace) for _ in range(2)]
    watcher = dyad_ctx(inst, 1, namespace)
    before, fetched = prod.stats()["served"], watcher.stats()["fetched"]
    answers = []
    threads = [threading.Thread(target=lambda c=c: answers.append(c.consume(c.cons_path / "shared.bin")))
               for c in consumers]
    for t in threads:
        t.start()
    _wait(lambda: len(watcher.stats()["consumers"]) == 2)   # both wait, nothing produced yet
    data = os.urandom(3 << 20)
    (prod.prod_path / "shared.bin").write_bytes(data)
    prod.produce(prod.prod_path / "shared.bin")
    for t in threads:
        t.join(10)
    assert len(answers) == 2
    assert prod.stats()["served"] - before == 1                  # one transfer for both
    assert watcher.stats()["fetched"] - fetched == 1
    assert (consumers[0].cons_path / "shared.bin").read_bytes() == data
    for d in (prod, watcher, *consumers):
        d.finalize()


def test_same_rank_no_copy(dyad_instance, namespace, tmp_path):
    prod = dyad_ctx(dyad_instance, 0, namespace)
    cons = dyad_ctx(dyad_instance, 0, namespace, cons_managed_path=str(tmp_path))
    (prod.prod_path / "here.txt").write_text("local")
    prod.produce(prod.prod_path / "here.txt")
    answer = cons.consume(tmp_path / "here.txt")
    assert answer["owner"] == 0 and not answer["fetched"]
    assert os.stat(tmp_path / "here.txt").st_ino == os.stat(prod.prod_path / "here.txt").st_ino
    prod.finalize()
    cons.finalize()


def test_shared_storage_moves_no_data(dyad_instance, namespace, monkeypatch):
    prod = dyad_ctx(dyad_instance, 0, namespace)
    monkeypatch.setenv("DYAD_KVS_NAMESPACE", namespace)
    monkeypatch.setenv("DYAD_SHARED_STORAGE", "1")
    monkeypatch.setenv("DYAD_PATH_CONSUMER", str(prod.prod_path))
    from fluxnb.dyad import Dyad
    cons = Dyad()
    cons.init_env(uri=dyad_instance.rank_uri(1))
    assert cons.shared_storage
    (prod.prod_path / "s.txt").write_text("shared")
    prod.produce(prod.prod_path / "s.txt")
    answer = cons.consume(prod.prod_path / "s.txt")
    assert answer["owner"] == 0 and not answer["fetched"]
    monkeypatch.setenv("DYAD_SHARED_STORAGE", "0")               # parsed by value: off
    off = Dyad()
    off.init_env(uri=dyad_instance.rank_uri(1))
    assert not off.shared_storage
    for d in (prod, cons, off):
        d.finalize()


def test_bad_namespace(dyad_instance):
    prod = dyad_ctx(dyad_instance, 0, "no-such-namespace")
    cons = dyad_ctx(dyad_instance, 1, "no-such-namespace")
    (prod.prod_path / "x.txt").write_text("x")
    with pytest.raises(DyadError, match="no-such-namespace"):
        prod.produce(prod.prod_path / "x.txt")
    with pytest.raises(DyadError, match="does not exist") as info:
        cons.consume(cons.cons_path / "x.txt", timeout=5)
    assert info.value.errno == errno.ENOTSUP
    prod.finalize()
    cons.finalize()


def test_cli_produce_consume_and_wrapper(dyad_instance, namespace, tmp_path):
    import subprocess
    inst = dyad_instance
    prod = dyad_ctx(inst, 0, namespace)
    cons = dyad_ctx(inst, 1, namespace)
    base = dict(os.environ, DYAD_KVS_NAMESPACE=namespace, DYAD_PATH_PRODUCER=str(prod.prod_path),
                DYAD_PATH_CONSUMER=str(cons.cons_path))
    flux = [sys.executable, "-m", "fluxnb.cli.main", "dyad"]
    script = f"mkdir -p {prod.prod_path}/w && echo one > {prod.prod_path}/w/a.txt && echo two > {prod.prod_path}/b.txt"
    r = subprocess.run([*flux, "run", "sh", "-c", script], env=inst.environ(0, base),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*flux, "consume", f"{cons.cons_path}/w/a.txt", f"{cons.cons_path}/b.txt"],
                       env=inst.environ(1, base), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (cons.cons_path / "w" / "a.txt").read_text() == "one\n"
    assert (cons.cons_path / "b.txt").read_text() == "two\n"
    r = subprocess.run([*flux, "key", "1/data0.txt"], capture_output=True, text=True, env=base)
    assert r.stdout.strip() == "263.2ce.2e1.1/data0.txt"
    prod.finalize()
    cons.finalize()
