"""Seals and verifies ARC chains with dkimpy (Debian: python3-dkim, python3-authres to seal),
for tests/helpers/arc_peers.ts and tests/testdata/arc/make_fixtures.py.

Usage: /usr/bin/python3 arc_dkimpy.py < JOB.json
JOB.json: {"nameserver": "IP@PORT"} or {"records": {NAME: TXT}} (where keys come from: a DNS
server through dnspython, or this table with no network), and
  "jobs": [{"op": "verify", "message": BASE64}
         | {"op": "seal", "message": BASE64, "hops": [{"domain", "selector", "key" (PEM),
            "authservId", "chain" ("none"|"pass"|"fail", optional), "timestamp" (optional),
            "subjectTag" (optional)}]}]
A verify job gives {"result", "detail"}: dkimpy's cv for the chain ("pass", "fail", or "none"
when it calls the chain ended or absent) and its reason. A seal job runs its hops in order;
each hop takes cv= from "chain", or else from verifying the chain that is there, writes its
own Authentication-Results with that arc= result (dkimpy's arc_sign takes cv= from it), tags
the Subject as a list would when asked, then prepends the new ARC set; it gives
{"sealed": BASE64}. A job that throws gives {"error": TEXT}. Prints {"results": [...]}.
"""

import base64
import json
import logging
import sys

import dkim
import dns.rdatatype
import dns.resolver


def nameserver_dnsfunc(nameserver):
    ip, _, port = nameserver.partition("@")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ip.strip("[]")]
    resolver.port = int(port)
    resolver.lifetime = 5

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        try:
            answer = resolver.resolve(name, dns.rdatatype.TXT, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(list(rrset.items)[0].strings)
        return None

    return dnsfunc


def records_dnsfunc(records):
    table = {k.lower().rstrip(".").encode(): v.encode() for k, v in records.items()}

    def dnsfunc(name, timeout=5):
        if isinstance(name, str):
            name = name.encode()
        return table.get(name.lower().rstrip(b"."))

    return dnsfunc


def quiet_logger():
    logger = logging.getLogger("arc-peer")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def verify_job(job, dnsfunc, logger):
    message = base64.b64decode(job["message"])
    cv, _, reason = dkim.arc_verify(message, logger=logger, dnsfunc=dnsfunc)
    return {"result": cv.decode("ascii") if cv else "none", "detail": reason}


def seal_job(job, dnsfunc, logger):
    message = base64.b64decode(job["message"])
    for hop in job["hops"]:
        arc = hop.get("chain")
        if arc is None:
            cv, _, _ = dkim.arc_verify(message, logger=logger, dnsfunc=dnsfunc)
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
            timestamp=hop.get("timestamp"),
            logger=logger,
        )
        if not headers:
            raise RuntimeError("dkim.arc_sign made no ARC set")
        message = b"".join(headers) + message
    return {"sealed": base64.b64encode(message).decode()}


def main():
    request = json.load(sys.stdin)
    if "nameserver" in request:
        dnsfunc = nameserver_dnsfunc(request["nameserver"])
    else:
        dnsfunc = records_dnsfunc(request["records"])
    logger = quiet_logger()
    results = []
    for job in request["jobs"]:
        try:
            run = seal_job if job["op"] == "seal" else verify_job
            results.append(run(job, dnsfunc, logger))
        except Exception as e:  # one bad job must not hide the others' results
            results.append({"error": "%s: %s" % (type(e).__name__, e)})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
