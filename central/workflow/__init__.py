"""The incident workflow: vocabulary, the state machine's rules, the engine that applies steps, deadlines, routing, notifications, audit."""
