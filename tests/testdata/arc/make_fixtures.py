"""Regenerates the sealed fixtures here: python3 make_fixtures.py (needs python3-dkim,
python3-authres, libmail-dkim-perl). Three hops, hop N seals as arcN._domainkey.hopN.example;
dkimpy_list_2.eml has a Subject tagged at hop 2."""
import base64, json, subprocess

HERE = __file__.rsplit("/", 1)[0] or "."
PEERS = HERE + "/../../helpers/peers/"
message = (b"From: Alice <alice@origin.example>\r\nTo: list@hop1.example\r\n"
           b"Subject: Lunch on Friday\r\nDate: Fri, 5 Jan 2024 12:00:00 +0000\r\n"
           b"Message-ID: <lunch-1@origin.example>\r\n\r\nNoon at the usual place?\r\n\r\n-- \r\nAlice\r\n")
records = dict(line.strip().split(" ", 1) for line in open(HERE + "/keys.txt") if line.strip())
hops = [{"domain": "hop%d.example" % i, "selector": "arc%d" % i,
         "key": open(HERE + "/hop%d.pem" % i).read(), "authservId": "mx.hop%d.example" % i}
        for i in (1, 2, 3)]


def seal(script, hops):
    job = {"records": records, "jobs": [{"op": "seal", "hops": hops,
                                          "message": base64.b64encode(message).decode()}]}
    run = subprocess.run(script, input=json.dumps(job).encode(), capture_output=True, check=True)
    out = json.loads(run.stdout)["results"][0]
    if "error" in out:
        raise SystemExit("%s: %s" % (script[1], out["error"]))
    return base64.b64decode(out["sealed"])


DKIMPY = ["/usr/bin/python3", PEERS + "arc_dkimpy.py"]
for name, cmd in (("dkimpy", DKIMPY), ("mail_dkim", ["/usr/bin/perl", PEERS + "arc_mail_dkim.pl"])):
    open("%s/%s_3.eml" % (HERE, name), "wb").write(seal(cmd, hops))

# A list at hop 2 tags the Subject after hop 1 sealed: AMS 1 breaks, the chain passes from 2.
hops[1]["subjectTag"] = "[lunch]"
open(HERE + "/dkimpy_list_2.eml", "wb").write(seal(DKIMPY, hops[:2]))
