"""A chat room, written as an RPyC user writes one (after RPyC's own chat
demo), for one instance shared by every connection: serve it with
`wasm-rpyc serve --shared chat.py`. Module-level state (who is logged in)
is shared; each connection has its own service object.

A client logs in with a callback, which receives every line said in the
room, and gets a token to speak with; `say` sends each line to everyone
without waiting for anyone (`rpyc.async_`), so a slow or vanished client
holds nobody up. Disconnecting logs the user out.
"""

import rpyc

PASSWORDS = {"alice": "wonderland", "bob": "builder", "carol": "christmas"}

# Who is in the room: user name -> token. Shared by every connection.
tokens = {}


def broadcast(text):
    """Sends `text` to everyone in the room, waiting for no one."""
    for token in list(tokens.values()):
        try:
            rpyc.async_(token.callback)(text)
        except EOFError:
            # Gone: its disconnection logs it out.
            pass


class UserToken:
    """What a logged-in user speaks with."""

    def __init__(self, name, callback):
        self.name = name
        self.callback = callback
        self.stale = False
        tokens[name] = self
        broadcast(f"* {name} has joined")

    def exposed_say(self, message):
        if self.stale:
            raise ValueError("User token is stale")
        broadcast(f"[{self.name}] {message}")

    def exposed_logout(self):
        if self.stale:
            return
        self.stale = True
        self.callback = None
        del tokens[self.name]
        broadcast(f"* {self.name} has left")


class ChatService(rpyc.Service):
    def on_connect(self, conn):
        self.token = None

    def on_disconnect(self, conn):
        if self.token is not None:
            self.token.exposed_logout()

    def exposed_login(self, username, password, callback):
        if self.token is not None and not self.token.stale:
            raise ValueError("already logged in")
        if PASSWORDS.get(username) != password:
            raise ValueError("wrong username or password")
        if username in tokens:
            raise ValueError(f"{username} is logged in already")
        self.token = UserToken(username, callback)
        return self.token

    def exposed_who(self):
        """Who is in the room, sorted."""
        return tuple(sorted(tokens))


if __name__ == "__main__":
    from rpyc.utils.server import ThreadedServer

    ThreadedServer(ChatService, port=18879).start()
