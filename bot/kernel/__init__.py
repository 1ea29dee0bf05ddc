"""What every stage stands on: settings, database and models, outbox, locks, scheduler, audit, errors, metrics."""
