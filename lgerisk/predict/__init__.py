"""Risk for new scans with a trained model: masks found beside scans, batches, prediction records."""
