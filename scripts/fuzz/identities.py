"""Registers a user of the fuzz run's server and prints their token.

    python identities.py BASE_URL customer
    python identities.py BASE_URL staff STAFF_API_KEY
"""

import json
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


def main():
    base, role = sys.argv[1], sys.argv[2]
    email = f"{role}@fuzz.example"
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
