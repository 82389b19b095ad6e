"""Console lines: one per training epoch, a table after testing."""

from __future__ import annotations


def format_epoch(epoch: int, epochs: int, stats: dict[str, float], seconds: float) -> str:
    accs = "  ".join(f"{k} {v:.3f}" for k, v in stats.items() if k.startswith("acc@"))
    return f"epoch {epoch}/{epochs}  loss {stats['loss']:.4f}  {accs}  lr {stats['lr']:.2e}  ({seconds:.1f}s)"


def format_results(results: dict) -> str:
    if "plain" in results:  # re-ranked: the plain results first, then the re-ranked ones
        reranked = {k: v for k, v in results.items() if k not in ("plain", "rerank")}
        plain = format_results({**reranked, **results["plain"]}).splitlines()
        lines = format_results(reranked).splitlines()
        return "\n".join([f"{plain[0]} without re-ranking", *plain[1:],
                          f"{lines[0]} re-ranked by {results['rerank']}", *lines[1:]])
    cmc = results.get("cmc", {})
    header = [f"Rank-{k}" for k in cmc] + ["mAP", "mINP", "valid", "skipped"]
    values = [f"{100 * v:.2f}" for v in cmc.values()]
    values += [f"{100 * results['mAP']:.2f}", f"{100 * results['mINP']:.2f}"]
    values += [str(results.get("num_valid_queries", "")), str(results.get("num_skipped", ""))]
    widths = [max(len(h), len(v)) for h, v in zip(header, values)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    rule = "  ".join("-" * w for w in widths)
    row = "  ".join(v.rjust(w) for v, w in zip(values, widths))
    epoch = results.get("epoch")
    title = f"Results (epoch {epoch}, %)" if epoch else "Results (%)"
    return "\n".join([title, line, rule, row])
