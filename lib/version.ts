/** The dkimd release, as `dkimd --version` and the `DKIM-Filter` header report it. */
export const VERSION = "0.1.0";
