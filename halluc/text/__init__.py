"""Text normalisation for the metrics: tokenisers and the CHAIR word normalisers (singularize, lemma)."""
