"""Makes a user of the fuzz run's server and prints their token.

    python identities.py BASE_URL customer
    python identities.py BASE_URL staff STAFF_API_KEY
    python identities.py BASE_URL superuser TICKETS_BINARY DATABASE_URL

Customers and staff register through the API; a superuser cannot, so it is made as an
operator makes one, with `tickets create-superuser` (password on standard input).
"""

import json
import os
import subprocess
import sys
import urllib.request

PASSWORD = "fuzzing password"


def call(base, path, body, token=None):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def create_superuser(binary, database_url, email):
    environment = dict(
        os.environ,
        DATABASE_URL=database_url,
        TICKETS_ENV="development",
        TICKETS__AUTH__BCRYPT_COST="4",
        RUST_LOG="warn",
    )
    subprocess.run(
        [binary, "create-superuser", "--email", email, "--username", "fuzz superuser"],
        input=PASSWORD + "\n",
        text=True,
        env=environment,
        # Its message goes to stderr: stdout carries only the token to run.sh.
        stdout=sys.stderr,
        check=True,
        timeout=120,
    )


def main():
    base, role = sys.argv[1], sys.argv[2]
    email = f"{role}@fuzz.example"
    if role == "superuser":
        create_superuser(sys.argv[3], sys.argv[4], email)
        print(call(base, "/login", {"email": email, "password": PASSWORD})["token"])
        return
    registration = {"email": email, "password": PASSWORD, "username": f"fuzz {role}"}
    staff_key = None
    if role == "staff":
        registration["isStaff"] = True
        staff_key = sys.argv[3]
    user = call(base, "/users", registration, staff_key)
    assert user["is_staff"] == (role == "staff"), user
    login = call(base, "/login", {"email": email, "password": PASSWORD})
    print(login["token"])


if __name__ == "__main__":
    main()
