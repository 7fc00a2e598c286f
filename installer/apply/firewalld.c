/*
 * firewalld: the node's ports opened in the zone its interface is really
 * in, and the pod and service subnets added to the trusted zone. Ports
 * alone are not enough: traffic forwarded between flannel.1, cni0 and the
 * uplink otherwise hits firewalld's forward REJECT (flannel-io/flannel
 * #2055), and cross-node pod traffic and DNS fail. Permanent and runtime
 * state are checked and changed separately: either may lack what the
 * other has (a --reload, a hand-made change).
 *
 * Under --root firewalld cannot be asked: the zone comes from the root's
 * configuration (a zone file under /etc/firewalld/zones that lists an
 * interface, else DefaultZone in /etc/firewalld/firewalld.conf, else
 * public) and firewall-offline-cmd is planned.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "installer/apply/apply.h"

/* A zone name as firewalld allows it (letters, digits, '-', '_', '/'
 * excluded): it becomes part of an argument. */
static int zone_ok(const char *z)
{
	return z[0] && strlen(z) < 64 && strspn(z, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == strlen(z);
}

/* The interface that holds the node's address. */
static int node_iface(const apply *a, char *out, size_t n)
{
	struct ifaddrs *ifs = NULL;
	struct in_addr want;
	int found = 0;

	if (inet_pton(AF_INET, a->ip, &want) != 1 || getifaddrs(&ifs) != 0)
		return 0;
	for (struct ifaddrs *i = ifs; i && !found; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == want.s_addr)
			found = kf_strf(out, n, "%s", i->ifa_name) == 0;
	freeifaddrs(ifs);
	return found;
}

/* The live zone: the node interface's, else firewalld's default. */
static void live_zone(const apply *a, char *zone, size_t n)
{
	char iface[IF_NAMESIZE + 1], arg[64], out[128] = "";
	const char *def[] = {"firewall-cmd", "--get-default-zone", NULL};

	if (node_iface(a, iface, sizeof iface) &&
	    kf_strf(arg, sizeof arg, "--get-zone-of-interface=%s", iface) == 0) {
		const char *q[] = {"firewall-cmd", arg, NULL};
		if (kfi_probe_out(q, out, sizeof out) == 0) {
			out[strcspn(out, " \t\r\n")] = '\0';
			if (zone_ok(out)) {
				kf_strf(zone, n, "%s", out);
				return;
			}
		}
	}
	out[0] = '\0';
	if (kfi_probe_out(def, out, sizeof out) == 0)
		out[strcspn(out, " \t\r\n")] = '\0';
	if (!zone_ok(out) || kf_strf(zone, n, "%s", out) != 0)
		kf_strf(zone, n, "public");
}

/* The zone the root's configuration puts an interface in. */
static void root_zone(const apply *a, char *zone, size_t n)
{
	char *dir = kfi_path(&a->c, "/etc/firewalld/zones"), *buf = NULL;
	struct dirent **ents = NULL;
	int ne = dir ? scandir(dir, &ents, NULL, alphasort) : -1;
	size_t len;
	kf_err ign;

	zone[0] = '\0';
	for (int i = 0; i < ne; i++) {
		const char *nm = ents[i]->d_name;
		size_t l = strlen(nm);
		char *p = NULL;
		if (!zone[0] && l > 4 && !strcmp(nm + l - 4, ".xml") &&
		    (p = kfi_strf("%s/%s", dir, nm)) &&
		    kf_read_file(p, 1 << 20, &buf, &len, &ign) == KF_OK &&
		    strstr(buf, "<interface ") && l - 4 < n) {
			snprintf(zone, n, "%.*s", (int)(l - 4), nm);
			if (!zone_ok(zone))
				zone[0] = '\0';
		}
		free(buf);
		buf = NULL;
		free(p);
		free(ents[i]);
	}
	free(ents);
	free(dir);
	if (zone[0])
		return;
	if (kfi_read_root_file(a, "/etc/firewalld/firewalld.conf", &buf, &len, &ign) == KF_OK) {
		for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
			if (!strncmp(l, "DefaultZone=", 12)) {
				snprintf(zone, n, "%.*s", (int)strcspn(l + 12, " \t\r\n"), l + 12);
				break;
			}
	}
	free(buf);
	if (!zone_ok(zone))
		snprintf(zone, n, "public");
}

/* One setting (--add-port=X or --add-source=X) in zone: offline under
 * --root; live, permanent and runtime each when their query says it is
 * missing. */
static int ensure(apply *a, const char *zone, const char *what, const char *value, kf_err *e)
{
	char z[96], add[128], query[128];
	int rc = KF_OK;

	if (kf_strf(z, sizeof z, "--zone=%s", zone) != 0 ||
	    kf_strf(add, sizeof add, "--add-%s=%s", what, value) != 0 ||
	    kf_strf(query, sizeof query, "--query-%s=%s", what, value) != 0)
		return kf_err_set(e, KF_EUSAGE, "firewalld %s too long: %s", what, value);
	if (!a->c.live) {
		const char *argv[] = {"firewall-offline-cmd", z, add, NULL};
		return kfi_run(&a->c, argv, e);
	}
	{
		const char *qp[] = {"firewall-cmd", "--permanent", z, query, NULL};
		const char *ap[] = {"firewall-cmd", "--permanent", z, add, NULL};
		const char *qr[] = {"firewall-cmd", z, query, NULL};
		const char *ar[] = {"firewall-cmd", z, add, NULL};
		if (kfi_probe(qp) != 0)
			rc = kfi_run(&a->c, ap, e);
		if (rc == KF_OK && kfi_probe(qr) != 0)
			rc = kfi_run(&a->c, ar, e);
		if (rc == KF_OK && kfi_probe(qp) == 0 && kfi_probe(qr) == 0) {
			printf("%-8s firewalld %s %s %s\n", "ok", zone, what, value);
			a->c.ok++;
		}
	}
	return rc;
}

int kfi_step_firewalld(apply *a, kf_err *e)
{
	const char *const *ports = a->control_plane ? kfi_tpl_cp_ports : kfi_tpl_worker_ports;
	const char *subnets[] = {a->lock->install.pod_subnet ? a->lock->install.pod_subnet : "10.244.0.0/16",
	                         a->lock->install.service_subnet ? a->lock->install.service_subnet
	                                                         : "10.96.0.0/12", NULL};
	char zone[64];
	int rc = KF_OK;

	if (a->c.live) {
		const char *state[] = {"firewall-cmd", "--state", NULL};
		if (kfi_probe(state) != 0) {
			printf("%-8s firewalld (not running)\n", "ok");
			a->c.ok++;
			goto out;
		}
		live_zone(a, zone, sizeof zone);
	} else if (!kfi_root_exists(a, "/usr/lib/systemd/system/firewalld.service") &&
	           !kfi_root_exists(a, "/etc/firewalld")) {
		printf("%-8s firewalld (not installed in %s)\n", "ok", a->c.root[0] ? a->c.root : "/");
		a->c.ok++;
		goto out;
	} else {
		root_zone(a, zone, sizeof zone);
	}
	printf("%-8s firewalld zone %s: ports; trusted: pod and service subnets\n", "note", zone);
	for (size_t i = 0; rc == KF_OK && ports[i]; i++)
		rc = ensure(a, zone, "port", ports[i], e);
	/* Forwarded pod and service traffic must not meet the REJECT. */
	for (size_t i = 0; rc == KF_OK && subnets[i]; i++)
		rc = ensure(a, "trusted", "source", subnets[i], e);
out:
	return rc;
}
