"""Drives dkimpy (Debian: python3-dkim) for tests/helpers/peers.ts.

Usage: /usr/bin/python3 dkimpy.py JOBS.json

JOBS.json has the shape mail_dkim.pl reads (keys, dnsTimeout, jobs of op "verify" or "sign");
the output is one JSON object {"version", "results"} on stdout. Keys never come from the
internet: with "records" a dnsfunc answers from the job file; with "nameserver" dnspython asks
only that server.
"""

import base64
import json
import logging
import sys

import dkim

# dkimpy reports some failures only through its logger (verify() then returns False); collect
# them in memory so the verdict can carry dkimpy's own words.


class _Collector(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.errors = []

    def emit(self, record):
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


def _record_dnsfunc(records):
    table = {name.lower().rstrip("."): text.encode("utf-8") for name, text in records.items()}

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        # dkimpy treats None as "no key" (KeyFormatError: missing public key).
        return table.get(name.lower().rstrip("."))

    return dnsfunc


def _nameserver_dnsfunc(nameserver, timeout):
    import dns.rdatatype
    import dns.resolver

    ip, _, port = nameserver.partition("@")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ip.strip("[]")]
    resolver.port = int(port or 53)
    resolver.lifetime = timeout

    def dnsfunc(name, timeout=timeout):
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        try:
            answer = resolver.resolve(name, dns.rdatatype.TXT, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as e:
            raise dkim.DnsTimeoutError(str(e))
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(list(rrset.items)[0].strings)
        return None

    return dnsfunc


def _signature_count(message):
    headers, _ = dkim.rfc822_parse(message)
    return len([1 for name, _ in headers if name.lower() == b"dkim-signature"])


def _tag(signature_fields, name):
    value = signature_fields.get(name) if signature_fields else None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else None


def verify_job(job, dnsfunc):
    message = base64.b64decode(job["message"])
    verdicts = []
    for idx in range(_signature_count(message)):
        collector = _Collector()
        logger = logging.getLogger("dkimpy-peer-%d" % idx)
        logger.handlers = [collector]
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        d = dkim.DKIM(message, logger=logger)
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
            detail = "; ".join(collector.errors) if not ok else ""
            if not ok and not detail:
                detail = "signature verification failed"
        except dkim.DKIMException as e:
            ok = False
            detail = "%s: %s" % (type(e).__name__, e)
        verdict = {"result": "pass" if ok else "fail", "detail": detail}
        fields = getattr(d, "signature_fields", None)
        for key, tag in (("domain", b"d"), ("selector", b"s"), ("algorithm", b"a")):
            value = _tag(fields, tag)
            if value:
                verdict[key] = value
        verdicts.append(verdict)
    return {"verdicts": verdicts}


def _ed25519_seed(key):
    """dkimpy takes an Ed25519 key as the base64 of its 32-byte seed (RFC 8463 section 4)."""
    text = key.strip()
    if "-----BEGIN" not in text:
        return text.encode("ascii")
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    # PKCS#8 (RFC 8410 section 7): a fixed 16-byte prefix, then the 32-byte seed.
    prefix = bytes.fromhex("302e020100300506032b657004220420")
    if len(der) != 48 or der[:16] != prefix:
        raise ValueError("Ed25519 PEM is not a PKCS#8 Ed25519 private key")
    return base64.b64encode(der[16:])


def sign_job(job):
    message = base64.b64decode(job["message"])
    algorithm = job["algorithm"].encode("ascii")
    if algorithm.startswith(b"ed25519"):
        key = _ed25519_seed(job["key"])
    else:
        key = job["key"].encode("ascii")
    # RFC 6376 section 3.5: a lone c= value names the header algorithm; the body is simple.
    header, _, body = job["canonicalization"].partition("/")
    body = body or "simple"
    headers = job.get("headers")
    d = dkim.DKIM(message, signature_algorithm=algorithm)
    signature = d.sign(
        job["selector"].encode("ascii"),
        job["domain"].encode("ascii"),
        key,
        canonicalize=(header.encode("ascii"), body.encode("ascii")),
        include_headers=[h.encode("ascii") for h in headers] if headers else None,
        length=bool(job.get("length")),
    )
    return {"signature": base64.b64encode(signature).decode("ascii")}


def main():
    with open(sys.argv[1], "rb") as f:
        request = json.load(f)
    keys = request.get("keys") or {}
    timeout = request.get("dnsTimeout") or 5
    if "records" in keys:
        dnsfunc = _record_dnsfunc(keys["records"])
    elif "nameserver" in keys:
        dnsfunc = _nameserver_dnsfunc(keys["nameserver"], timeout)
    else:
        raise SystemExit('keys must have "records" or "nameserver"')
    results = []
    for job in request["jobs"]:
        try:
            if job["op"] == "verify":
                results.append(verify_job(job, dnsfunc))
            elif job["op"] == "sign":
                results.append(sign_job(job))
            else:
                raise ValueError('unknown op "%s"' % job["op"])
        except Exception as e:  # one bad job must not hide the others' results
            results.append({"error": "%s: %s" % (type(e).__name__, e)})
    version = "dkimpy unknown"
    try:
        from importlib.metadata import version as dist_version
        version = "dkimpy " + dist_version("dkimpy")
    except Exception:
        pass
    json.dump({"version": version, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
