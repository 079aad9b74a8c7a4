"""What a deployment costs: the price of the workers running now and the spend so far."""
