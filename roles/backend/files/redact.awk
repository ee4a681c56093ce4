# Managed by Ansible (livestream.aws.backend)
# Copies its input to its output, a line at a time, with every secret replaced by <redacted>.
# The secrets: the environment's LIVESTREAM_SECRETS, separated by spaces (keys and URLs have
# none); read from the environment so that no command line holds them.
BEGIN { count = split(ENVIRON["LIVESTREAM_SECRETS"], secrets, " ") }
{
    line = $0
    for (i = 1; i <= count; i++) {
        out = ""
        while ((at = index(line, secrets[i])) > 0) {
            out = out substr(line, 1, at - 1) "<redacted>"
            line = substr(line, at + length(secrets[i]))
        }
        line = out line
    }
    print line
    fflush()
}
