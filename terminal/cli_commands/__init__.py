"""The commands of the ``sscard`` command line, one small module per command
(group).  The root group (:mod:`terminal.cli`) imports a module only when its
command runs; each module imports the terminal API (flows, sessions, key
sources) inside the command body, so ``sscard --help`` stays fast."""
