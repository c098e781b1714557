"""The Playground: cached inference on a run's model, the sentence, prediction and saliency, live and batch
attacks, and the edit history."""
