from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """argon2id at OWASP's minimum (m=19 MiB, t=2, p=1).

    argon2-cffi's defaults (m=64 MiB, t=3, p=4) cost ~136 ms CPU per hash on this hardware,
    which makes the password form the cheapest way to exhaust the service. Stored hashes
    carry their parameters, so raising these later re-hashes at the next login.
    """

    algorithm = "argon2"
    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
