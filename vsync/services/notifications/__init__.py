"""Notifications: email (`mail`), each person's preferences (`preferences`), digests (`digests`) and
alerts (`alerts`). Sending happens in jobs (`vsync.jobs.notifications`), queued by name."""
