"""``halluc finetune``: fine-tune a VLM on instruction records (LoRA or full; answer-only loss) and save
the merged model. The work is ``halluc.pipelines.finetune`` (options, records, training, output).

    halluc finetune --model builtin --data lrv.jsonl --out runs/ft-lrv
    accelerate launch -m halluc finetune --model DIR --data lrv.jsonl --out DIR2   # several GPUs
"""
from __future__ import annotations

import os
import sys

from halluc.command import add_stage, guard, module_main
from halluc.pipelines.finetune import add_options


def add_parser(subparsers):
    return add_stage(subparsers, "finetune", add_options, run,
                     help="fine-tune a VLM on instruction records (LoRA or full; answer-only loss); saves a merged model",
                     description="Supervised fine-tuning on LRV-style records (halluc negatives) with transformers' Trainer or "
                                 "TRL's SFTTrainer; loss on the answer only. Saves the merged model, loadable by "
                                 "`halluc decode --model DIR`, and the LoRA adapter. Runs under `accelerate launch` on several GPUs.")


def _run(args) -> int:
    from halluc.pipelines.finetune import run as finetune
    summary = finetune(args)
    if int(os.environ.get("RANK", "0")) == 0:      # one summary line, from the process that saved
        print(f"{summary['examples']} examples ({summary['skipped']} skipped), {summary['steps']} steps: answer loss "
              f"{summary['loss_before']:.4f} -> {summary['loss_after']:.4f} -> {args.out}", file=sys.stderr)
    return 0


run = guard(_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m halluc.commands.finetune finetune …`` (what ``accelerate launch -m`` needs)."""
    return module_main(add_parser, argv, command="finetune")


if __name__ == "__main__":
    sys.exit(main())
