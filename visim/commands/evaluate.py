"""``visim evaluate EMBEDDINGS_FILE``: rank saved embeddings again, without the model.

Defaults come from the file (the metric, protocol and ranks of the config that wrote it), so
``visim evaluate`` on the output of ``visim predict`` reports what ``visim test`` reported;
every option overrides one of them.
"""

from __future__ import annotations

import argparse
import json

from visim.config.errors import ConfigError
from visim.evaluation.options import AP_MODES, DEFAULTS, NO_POSITIVE, PROTOCOLS, EvalOptions

HELP = "rank saved query/gallery embeddings (from `visim predict`) and report CMC, mAP, mINP"
# What a file that does not say how to rank it is ranked with: the evaluation's own defaults.
FALLBACK = {
    "metric": "euclidean",
    "protocol": DEFAULTS.protocol,
    "topk_cmc": list(DEFAULTS.topk),
    "no_positive": DEFAULTS.no_positive,
    "ap": DEFAULTS.ap,
    "max_rank": DEFAULTS.max_rank,
}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help=HELP, description=HELP)
    parser.add_argument("embeddings", metavar="EMBEDDINGS_FILE", help="a .npz or .pt file written by `visim predict`")
    parser.add_argument(
        "--metric",
        metavar="NAME",
        help="a registered metric, or a YAML mapping with params: '{name: minkowski, p: 3}' (default: the file's)",
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, help="which gallery items count (default: the file's)")
    parser.add_argument("--topk", type=positive_int, nargs="+", metavar="K", help="CMC ranks to report (default: the file's)")
    parser.add_argument("--no-positive", choices=NO_POSITIVE, help="queries without any positive (default: the file's)")
    parser.add_argument("--ap", choices=AP_MODES, help="AP definition (default: the file's)")
    parser.add_argument("--max-rank", type=positive_int, metavar="N", help="CMC curve length (default: the file's)")
    parser.add_argument(
        "--rerank",
        metavar="NAME",
        help="re-rank with a registered reranker, a YAML mapping '{name: k_reciprocal, k1: 20}' or a list '[qe, k_reciprocal]'",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument(
        "--device",
        default="cpu",
        help="where to rank: cpu, cuda or auto (default: cpu); under torchrun each process ranks a shard of the gallery",
    )
    parser.set_defaults(handler=handle)


def handle(args) -> int:
    """One process, or one of torchrun's: each ranks a shard of the gallery, rank 0 prints."""
    from visim.distributed import group as distributed

    try:
        distributed.setup(args.device)
        return evaluate_file(args, distributed.is_main_process())
    finally:
        distributed.teardown()


def evaluate_file(args, main: bool) -> int:
    from visim.errors import VisimError
    from visim.outputs.embeddings import load_embeddings

    saved = load_embeddings(args.embeddings)  # EmbeddingsFileError: exit 2
    options = resolve_options(args, saved.meta)
    metric = build_metric(options["metric"])
    rerank = build_rerank(args.rerank)
    try:
        results = rank(saved, metric, options, rerank, args.device)
    except ValueError as exc:  # e.g. no_positive=error with an unmatched query, bad protocol
        raise VisimError(str(exc)) from exc
    if not main:
        return 0
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        from visim.outputs.report import format_results

        print(f"{args.embeddings}: {len(saved.query)} queries, {len(saved.gallery)} gallery items, metric {describe_metric(options['metric'])}, protocol {options['protocol']}")
        print(format_results(results))
    return 0


def resolve_options(args, meta: dict) -> dict:
    chosen = {
        "metric": parse_metric(args.metric) if args.metric is not None else None,
        "protocol": args.protocol,
        "topk_cmc": args.topk,
        "no_positive": args.no_positive,
        "ap": args.ap,
        "max_rank": args.max_rank,
    }
    return {key: value if value is not None else meta.get(key, FALLBACK[key]) for key, value in chosen.items()}


def parse_metric(text: str):
    """``cosine`` stays a name; ``{name: minkowski, p: 3}`` becomes a mapping."""
    import yaml

    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            return stripped  # reported as an unknown metric name, with the text as written
    return stripped


class OptionError(ConfigError):
    """A bad ``--metric`` or ``--rerank``: one ``visim: error:`` line per problem (there is no config file)."""

    def report(self, source=None) -> str:
        return "\n".join(f"visim: error: {problem}" for problem in self.problems)


def build_metric(reference):
    from visim.config.converter import structure
    from visim.config.refs import MetricRef

    try:
        return structure(reference, MetricRef, "--metric").build()
    except ConfigError as exc:
        raise OptionError(exc.problems) from None


def build_rerank(text):
    """The rerankers of ``--rerank`` (None without it)."""
    from visim.config.converter import structure
    from visim.config.refs import RerankerRef
    from visim.rerank.chain import build_chain

    if text is None:
        return None
    try:
        return build_chain(structure(parse_metric(text), RerankerRef | tuple[RerankerRef, ...], "--rerank"))
    except ConfigError as exc:
        raise OptionError(exc.problems) from None


def describe_metric(reference) -> str:
    if isinstance(reference, dict):
        params = ", ".join(f"{k}={v}" for k, v in reference.items() if k != "name")
        return f"{reference.get('name')}({params})" if params else str(reference.get("name"))
    return str(reference)


def rank(saved, metric, options: dict, rerank=None, device: str = "cpu") -> dict:
    import functools

    from visim.distributed import group as distributed
    from visim.evaluation.distributed import evaluate_across
    from visim.rerank.chain import rerank_summary

    query, gallery = saved.query, saved.gallery
    device = distributed.device_for_rank(device)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    evaluate = functools.partial(  # under torchrun each process ranks a shard of the gallery
        evaluate_across,
        distributed.communicator(),
        query.embeddings.to(device),
        gallery.embeddings,
        metric,
        query.pids,
        gallery.pids,
        query.camids,
        gallery.camids,
        options=EvalOptions(
            topk=options["topk_cmc"],
            protocol=options["protocol"],
            no_positive=options["no_positive"],
            ap=options["ap"],
            max_rank=options["max_rank"],
        ),
    )
    results = evaluate(rerank=rerank).as_dict()
    if rerank:
        results.update(rerank_summary(rerank, evaluate()))
    return results
