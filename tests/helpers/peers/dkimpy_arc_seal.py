"""Seals a message with dkimpy's ARC signer (dkim.arc_sign), hop after hop.

Reads a JSON job file: {"message": base64, "records": {name: txt}, "hops": [{"domain",
"selector", "key" (PEM), "authservId", "subjectTag" (optional)}]}. Each hop verifies the chain that is there with
dkim.arc_verify (keys from "records", no network), writes its own Authentication-Results with
that arc= result (dkimpy takes cv= from it), tags the Subject as a list would when asked, then prepends the new ARC set. Prints
{"message": base64} or {"error": text}.
"""
import base64
import json
import sys

import dkim


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    records = {k.encode(): v.encode() for k, v in job["records"].items()}

    def dnsfunc(name, timeout=5):
        return records.get(name.rstrip(b"."))

    message = base64.b64decode(job["message"])
    for hop in job["hops"]:
        cv, _, _ = dkim.arc_verify(message, dnsfunc=dnsfunc)
        arc = {b"pass": "pass", b"fail": "fail"}.get(cv, "none")
        if hop.get("subjectTag"):
            # A mailing list's change, made after verifying and before sealing.
            tag = hop["subjectTag"].encode() + b" "
            message = message.replace(b"\r\nSubject: ", b"\r\nSubject: " + tag, 1)
        ar = "Authentication-Results: %s; arc=%s\r\n" % (hop["authservId"], arc)
        message = ar.encode() + message
        headers = dkim.arc_sign(
            message,
            hop["selector"].encode(),
            hop["domain"].encode(),
            hop["key"].encode(),
            hop["authservId"].encode(),
        )
        message = b"".join(headers) + message
    print(json.dumps({"message": base64.b64encode(message).decode()}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the harness reports the text
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
