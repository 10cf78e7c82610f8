/**
 * The files of systemd/, carried inside the executable for `dkimd install`. GENERATED from
 * systemd/ by tests/ops/units_test.ts (`UPDATE_GOLDEN=1 deno test -A tests/ops/units_test.ts`);
 * do not edit: edit systemd/ and regenerate. The test fails while the two differ.
 *
 * @module
 */

/** One file of systemd/: its name there and its text. */
export interface UnitFile {
  /** The file name in systemd/. */
  readonly name: string;
  /** Its contents. */
  readonly text: string;
}

/**
 * The units, sysusers.d and tmpfiles.d entries and example configuration, as in systemd/.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UNIT_FILES } from "./units.ts";
 * const service = UNIT_FILES.find((f) => f.name === "dkimd.service");
 * assert.match(service?.text ?? "", /^ExecReload=\/bin\/kill -USR1 \$MAINPID$/m);
 * ```
 */
export const UNIT_FILES: readonly UnitFile[] = [
  {
    name: "dkimd.service",
    text:
      '# dkimd: the DKIM signing and verifying milter, a drop-in for OpenDKIM.\n# Installed by "dkimd install"; packagers copy it to /usr/lib/systemd/system/.\n# The settings mirror the seed\'s opendkim.conf: AutoRestartRate 10/1h becomes\n# StartLimitIntervalSec=3600 with StartLimitBurst=10, UMask 002 becomes UMask=0002,\n# UserID opendkim:opendkim becomes User=/Group=, Syslog with SyslogFacility mail becomes\n# SyslogFacility=mail (journald passes the lines on to rsyslog\'s mail.log).\n\n[Unit]\nDescription=dkimd DKIM signing and verifying milter\nDocumentation=man:opendkim.conf(5) man:opendkim(8)\nAfter=network-online.target nss-lookup.target\nWants=network-online.target\nBefore=postfix.service\nStartLimitIntervalSec=3600\nStartLimitBurst=10\n\n[Service]\n# sd_notify(3): dkimd says READY=1 once its socket listens and its keys are loaded,\n# RELOADING=1/READY=1 around a reload, STOPPING=1, and a STATUS= line (mode, domains,\n# messages). "dkimd install" writes Type=notify-reload (without ExecReload=) where systemd\n# is 253 or newer; this form works on every systemd (RHEL/CentOS 9 ship 252).\nType=notify\nExecStart=/usr/local/sbin/dkimd serve -f -x /etc/dkimd/dkimd.conf\nExecReload=/bin/kill -USR1 $MAINPID\n# With UserID in the configuration and no User= here, a root supervisor starts the worker\n# that serves; the worker, whose event loop matters, notifies and pings the watchdog itself.\nNotifyAccess=all\n# WATCHDOG=1 every 15 s from the serving event loop; a loop stuck for 30 s is restarted.\nWatchdogSec=30s\nRestart=on-failure\nRestartSec=2\n# EX_CONFIG: a configuration error does not go away by restarting.\nRestartPreventExitStatus=78\nTimeoutStopSec=30\nUser=opendkim\nGroup=opendkim\nUMask=0002\n# /run/opendkim too, so a PidFile kept from opendkim.conf (/var/run/opendkim/opendkim.pid, as\n# the seed has it) can be written under ProtectSystem=strict.\nRuntimeDirectory=dkimd opendkim\nRuntimeDirectoryMode=0755\nSyslogIdentifier=dkimd\nSyslogFacility=mail\n\n# Hardening (systemd.exec(5)). MemoryDenyWriteExecute is left out: V8 compiles JavaScript to\n# machine code at run time. ReadWritePaths names the Postfix chroot\'s socket directories (the\n# seed shows both layouts); "-" lets the unit start where they do not exist (TCP sockets).\nNoNewPrivileges=yes\nCapabilityBoundingSet=\nAmbientCapabilities=\nProtectSystem=strict\nReadWritePaths=-/var/spool/postfix/opendkim -/var/spool/postfix/var/run/opendkim\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\nProtectProc=invisible\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\nRestrictNamespaces=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\nLockPersonality=yes\nRemoveIPC=yes\nPrivateMounts=yes\nKeyringMode=private\nSystemCallArchitectures=native\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\nSystemCallErrorNumber=EPERM\n\n[Install]\nWantedBy=multi-user.target\n',
  },
  {
    name: "dkimd.sysusers",
    text:
      '# sysusers.d(5) entry for dkimd: the account the seed\'s "UserID opendkim:opendkim" names and\n# OpenDKIM\'s own package creates, so key files set up for OpenDKIM ("chown root:opendkim",\n# "chmod 640") work unchanged. Nothing is created when the account exists already.\ng opendkim -\nu opendkim -:opendkim "DKIM milter (dkimd)" /run/dkimd /usr/sbin/nologin\n',
  },
  {
    name: "dkimd.tmpfiles",
    text:
      "# tmpfiles.d(5) entry for dkimd.\n# The run directory, for the PID file (the unit's RuntimeDirectory= makes it too).\nd /run/dkimd 0755 opendkim opendkim -\n# The unix socket directory inside Postfix's chroot, owned by the service user, group postfix,\n# mode 770 as the seed makes it, plus the setgid bit: the socket dkimd creates there belongs to\n# group postfix, so with UMask 002 Postfix's smtpd can connect without the seed's \"UMask 000\".\n# It fails harmlessly where Postfix (and its group) is not installed.\nd /var/spool/postfix/opendkim 2770 opendkim postfix -\n",
  },
  {
    name: "dkimd.conf",
    text:
      '# dkimd configuration: the opendkim.conf(5) format, which dkimd reads as OpenDKIM does\n# (a YAML file works too: "dkimd config convert" writes one). Installed by "dkimd install"\n# as /etc/dkimd/dkimd.conf; "dkimd check-config /etc/dkimd/dkimd.conf" checks it.\n\n# Sign mail from InternalHosts, verify the rest.\nMode                    sv\n\n# Where Postfix connects. TCP is the simplest (no chroot or permissions to get right):\nSocket                  inet:8891@localhost\n# Or a unix socket inside Postfix\'s chroot (the directory comes from tmpfiles.d/dkimd.conf):\n#Socket                 local:/var/spool/postfix/opendkim/opendkim.sock\n\n# Under systemd the unit sets the user (User=opendkim), restarts (Restart=on-failure with\n# 10 restarts an hour at most) and the log identity; these are for starting dkimd by hand.\n#UserID                 opendkim:opendkim\n#AutoRestart            yes\n#AutoRestartRate        10/1h\nUMask                   002\nPidFile                 /run/dkimd/dkimd.pid\n\n# Log to syslog\'s mail facility: one line per signed or verified message, and why not.\nSyslog                  yes\nSyslogFacility          mail\nSyslogSuccess           yes\nLogWhy                  yes\n\nSoftwareHeader          yes\nCanonicalization        relaxed/relaxed\nSignatureAlgorithm      rsa-sha256\n# Sign From and Subject once more than present, so a From or Subject added after signing\n# breaks the signature rather than riding on it (RFC 6376 §8.15).\nOversignHeaders         From,Subject\n\n# Keys: make one with "dkimd genkey -D /etc/dkimd/keys/example.com -d example.com -s dkim",\n# publish dkim.txt in DNS, check it with "dkimd testkey", then uncomment and fill in:\n#KeyTable               /etc/dkimd/key.table\n#SigningTable           refile:/etc/dkimd/signing.table\n#   key.table:      example   example.com:dkim:/etc/dkimd/keys/example.com/dkim.private\n#   signing.table:  *@example.com   example\n\n# Hosts whose mail is signed rather than verified (default 127.0.0.1 and ::1).\n#ExternalIgnoreList     /etc/dkimd/trusted.hosts\n#InternalHosts          /etc/dkimd/trusted.hosts\n',
  },
  {
    name: "dkimd.socket",
    text:
      "# dkimd.socket: systemd opens dkimd's milter socket and passes it to dkimd.service (socket\n# activation, sd_listen_fds(3)). Installed by \"dkimd install --socket-activation\", enabled with\n# \"systemctl enable --now dkimd.socket\". systemd then owns the socket: it listens from early boot,\n# before dkimd has started, and stays open across restarts of dkimd.service, so Postfix's\n# connections wait in the backlog instead of being refused while dkimd restarts.\n# dkimd serves the socket passed here instead of opening its configuration's Socket; keep the two\n# the same, so that dkimd started without this unit listens where Postfix expects it.\n\n[Unit]\nDescription=dkimd DKIM milter socket\nDocumentation=man:systemd.socket(5) man:sd_listen_fds(3)\n# Postfix connects to the milter as soon as it runs: the socket listens by then.\nBefore=postfix.service\n\n[Socket]\n# Where dkimd's Socket is: inet:8891@localhost, the example configuration's (Postfix:\n# inet:localhost:8891). \"dkimd install --socket-activation\" writes the configuration's here.\nListenStream=127.0.0.1:8891\n# A unix socket, such as local:/var/spool/postfix/opendkim/opendkim.sock inside Postfix's chroot\n# (Postfix: unix:opendkim/opendkim.sock), is ListenStream= with its path instead. systemd, not\n# dkimd, makes it, so the owner and mode that dkimd's UMask 002 in the setgid directory from\n# tmpfiles.d would give are set here: Postfix's smtpd (group postfix) must connect.\n#ListenStream=/var/spool/postfix/opendkim/opendkim.sock\n#SocketUser=opendkim\n#SocketGroup=postfix\n#SocketMode=0660\n# dkimd accepts the connections itself (Accept=no, the default): one service for all of them.\n\n[Install]\nWantedBy=sockets.target\n",
  },
  {
    name: "dkimd-rotate.service",
    text:
      '# dkimd-rotate.service: one run of "dkimd rotate", which advances every DKIM key rotation as\n# far as it safely can (generate, publish by DNS UPDATE, prove that every server serves the\n# record, switch the KeyTable and signal dkimd, revoke and delete the old key) and exits.\n# Started daily by dkimd-rotate.timer. Installed by "dkimd install" but not enabled: set the\n# Rotation* and DNSUpdate* settings in /etc/dkimd/dkimd.conf, try "dkimd rotate --dry-run",\n# then "systemctl enable --now dkimd-rotate.timer".\n\n[Unit]\nDescription=dkimd DKIM key rotation\nDocumentation=man:opendkim.conf(5)\nAfter=network-online.target nss-lookup.target\nWants=network-online.target\n\n[Service]\nType=oneshot\nExecStart=/usr/local/sbin/dkimd rotate -x /etc/dkimd/dkimd.conf\n# 75 (EX_TEMPFAIL): waiting for DNS to serve a record, or another run holds the run lock;\n# the next run goes on from there.\nSuccessExitStatus=75\n# As root: it writes key files owned by the service\'s group, the KeyTable in /etc/dkimd and the\n# state file, and sends SIGUSR1 to dkimd (PidFile), which runs as opendkim.\nUMask=0077\n# RotationStateFile\'s default, /var/lib/dkimd/rotation.json.\nStateDirectory=dkimd\nStateDirectoryMode=0750\nSyslogIdentifier=dkimd-rotate\nSyslogFacility=mail\n\n# Hardening (systemd.exec(5)). /etc stays writable (ProtectSystem=true, not full or strict):\n# the KeyTable and the keys live there.\nNoNewPrivileges=yes\nProtectSystem=true\nProtectHome=yes\nPrivateTmp=yes\nPrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectKernelLogs=yes\nProtectControlGroups=yes\nProtectClock=yes\nProtectHostname=yes\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\nRestrictNamespaces=yes\nRestrictRealtime=yes\nRestrictSUIDSGID=yes\nLockPersonality=yes\nSystemCallArchitectures=native\nSystemCallFilter=@system-service\nSystemCallErrorNumber=EPERM\n',
  },
  {
    name: "dkimd-rotate.timer",
    text:
      '# dkimd-rotate.timer: runs dkimd-rotate.service daily. Installed by "dkimd install" but not\n# enabled; "systemctl enable --now dkimd-rotate.timer" turns it on. A run only starts a rotation\n# for keys older than RotationInterval (0, the default, starts none), so daily is cheap, and it\n# moves a waiting rotation on within a day.\n\n[Unit]\nDescription=Daily dkimd DKIM key rotation\n\n[Timer]\nOnCalendar=daily\n# Spread the runs of many hosts, and run a missed one after boot.\nRandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n',
  },
];
