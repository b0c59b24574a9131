"""Every alert's wording: the subject, body and severity a condition is announced with.

Flows decide *whether* to alert; these functions say *what*, so the same condition reads the same
in Slack, in the webhook payload, in the event and in the tests.
"""
