"""The seed's callback ServerService: a function passed as an argument
arrives as a netref, and `bar` calls it back."""

import rpyc


class ServerService(rpyc.Service):
    def exposed_bar(self, func):
        return func() + "bar"
