"""RPyC's `rpyc.lib` inside a component: what a peer reaches through it."""
