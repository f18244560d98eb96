"""What-if replay: a job history or a published trace replayed in virtual time through the scheduler core against a
configuration (provisioned, draft or a file), to see what a quota change will do before it is provisioned."""
