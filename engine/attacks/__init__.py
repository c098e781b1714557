"""Adversarial attacks through TextAttack, one job per module.

- `wrapper`: the fast TextAttack model wrapper over a `LoadedModel`, and the (slow, once) TextAttack import;
- `recipes`: the recipe registry, what each recipe needs on this machine, and RobustLab's own recipes;
- `attacker`: one recipe with one budget against one model (`Attacker`, `Budget`, `AttackOutcome`) and
  TextAttack's summary numbers;
- `diff`: word- and character-level diffs of a text and its perturbed copy;
- `batch`: batch attacks, the `attack` job kind (config, reuse of a finished attack, results files).
"""
