"""Verifies ARC chains with dkimpy (Debian: python3-dkim) for tests/helpers/arc_peers.ts.

Usage: /usr/bin/python3 arc_dkimpy.py < JOB.json
JOB.json: {"nameserver": "IP@PORT", "messages": [BASE64, ...]}; keys come only from that
server (dnspython). Prints {"version", "results": [{"result", "reason"}]}: dkimpy's cv for the
chain ("pass", "fail", or "none" when it calls the chain ended or absent) and its reason.
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


def main():
    job = json.load(sys.stdin)
    dnsfunc = nameserver_dnsfunc(job["nameserver"])
    logger = logging.getLogger("arc-peer")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    results = []
    for encoded in job["messages"]:
        message = base64.b64decode(encoded)
        try:
            cv, _, reason = dkim.arc_verify(message, logger=logger, dnsfunc=dnsfunc)
            result = cv.decode("ascii") if cv else "none"
        except Exception as e:  # one bad message must not hide the others' results
            result, reason = "error", "%s: %s" % (type(e).__name__, e)
        results.append({"result": result, "reason": reason})
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
