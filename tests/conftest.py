"""The root of the test tree: its presence makes pytest (default `prepend` import mode) put `tests/` on
`sys.path`, so every test folder can import the shared helpers in `testkit/` whether or not the folder is
a package. Folders such as tests/service and tests/training deliberately have no `__init__.py`: as
packages they would shadow the real `service` and `training` packages."""
