"""`python -m prefscribe.train <sft|direct|rl> --config FILE`: the same commands as `prefscribe train`, as a
module so that `accelerate launch -m prefscribe.train rl --config configs/rl.yaml` starts one per GPU."""

from ..cli.train import app

if __name__ == "__main__":
    app(prog_name="python -m prefscribe.train")
