"""The spatio-temporal digital twin: grid x hour state, poor-experience episodes, root cause, what-if."""
