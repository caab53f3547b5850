"""The inner agent's web listener in a child process of its own (issue 15.3; the D-record
"The web listener in its own process").

The agent binds the listening socket, starts the child after its own start-up, passes it the
socket and a spec of what to open, restarts it when it dies and stops it with the agent; the
child opens the databases itself (SQLite WAL, shared safely between the processes), serves
the sign-in, the approval pages, the console and the API at a lower CPU priority, and wakes
the agent's worker after each decision. Nothing a web client does takes the mail path's
interpreter lock, and the kernel gives the mail path the cores first.

- ``channel``: the messages the child sends the agent (pure);
- ``spec``: what the child is told to open (``WebSpec``);
- ``site``: the listener's stores and app, assembled once for the child and the tests;
- ``child``: the child's main (``python -m inner_agent.webproc``);
- ``supervisor``: ``WebProcess``, the agent's side: start, restart with back-off, stop.
"""
