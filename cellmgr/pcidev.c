#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pci/pci.h>

#include "cellmgr/pcidev.h"
#include "cellmgr/proto.h"

static __thread jmp_buf *scan_jmp;
static __thread char scan_msg[256];

/* libpci declares this noreturn; returning would let libpci continue on a
 * half-initialised state, so jump back to cm_pci_scan(). */
static void PCI_NONRET pci_error_cb(char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	vsnprintf(scan_msg, sizeof(scan_msg), msg, ap);
	va_end(ap);
	longjmp(*scan_jmp, 1);
}

static void pci_quiet_cb(char *msg, ...)
{
	(void)msg;   /* warnings/debug: not ours to print from a library */
}

static int cmp_bdf(const void *a, const void *b)
{
	const struct cm_ivshmem_pci *x = a, *y = b;
	uint64_t kx = (uint64_t)x->domain << 16 | x->bus << 8 | x->dev << 3 | x->func;
	uint64_t ky = (uint64_t)y->domain << 16 | y->bus << 8 | y->dev << 3 | y->func;

	return (kx > ky) - (kx < ky);
}

int cm_pci_scan(const char *dump_file, struct cm_ivshmem_pci **out, size_t *n,
		struct cm_err *err)
{
	struct pci_access *volatile a = NULL;
	struct cm_ivshmem_pci *volatile v = NULL;
	volatile size_t cnt = 0, cap = 0;
	jmp_buf jb;
	jmp_buf *volatile prev = scan_jmp;
	volatile int ret = 0;

	*out = NULL;
	*n = 0;
	if (setjmp(jb)) {
		cm_err_set(err, "libpci: %s", scan_msg);
		if (dump_file)
			cm_err_hint(err, "check the dump file %s (lspci -x format)", dump_file);
		else
			cm_err_hint(err, "is /sys/bus/pci readable? run as root");
		ret = -EIO;
		goto out;
	}
	scan_jmp = &jb;
	a = pci_alloc();
	if (!a) {
		ret = -ENOMEM;
		goto out;
	}
	a->error = pci_error_cb;
	a->warning = pci_quiet_cb;
	a->debug = pci_quiet_cb;
	if (dump_file) {
		a->method = PCI_ACCESS_DUMP;
		if (pci_set_param(a, "dump.name", (char *)dump_file) < 0) {
			cm_err_set(err, "libpci has no dump access method");
			ret = -ENOTSUP;
			goto out;
		}
	}
	pci_init(a);
	pci_scan_bus(a);

	for (struct pci_dev *d = a->devices; d; d = d->next) {
		struct cm_ivshmem_pci *e;
		unsigned fill = PCI_FILL_IDENT | PCI_FILL_CLASS;
		unsigned prog_if;

#if PCI_LIB_VERSION >= 0x030800
		fill |= PCI_FILL_CLASS_EXT | PCI_FILL_SUBSYS;
#endif
		pci_fill_info(d, (int)fill);
		if (d->vendor_id != CM_IVSHMEM_VENDOR || d->device_id != CM_IVSHMEM_DEVICE)
			continue;
		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 4;
			struct cm_ivshmem_pci *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				ret = -ENOMEM;
				goto out;
			}
			v = nv;
			cap = nc;
		}
		e = &v[cnt];
		memset(e, 0, sizeof(*e));
		e->domain = (uint16_t)d->domain;
		e->bus = d->bus;
		e->dev = d->dev;
		e->func = d->func;
		snprintf(e->bdf, sizeof(e->bdf), "%04x:%02x:%02x.%d",
			 e->domain, e->bus, e->dev, e->func);
#if PCI_LIB_VERSION >= 0x030800
		prog_if = d->prog_if;
		e->revision = d->rev_id;
		e->subsys_vendor = d->subsys_vendor_id;
		e->subsys_device = d->subsys_id;
#else
		prog_if = pci_read_byte(d, PCI_CLASS_PROG);
		e->revision = pci_read_byte(d, PCI_REVISION_ID);
		e->subsys_vendor = pci_read_word(d, PCI_SUBSYSTEM_VENDOR_ID);
		e->subsys_device = pci_read_word(d, PCI_SUBSYSTEM_ID);
#endif
		e->class_code = (uint32_t)d->device_class << 8 | (prog_if & 0xff);
		/* subclass = protocol[15:8], prog-if = protocol[7:0] */
		e->protocol = (uint16_t)((d->device_class & 0xff) << 8 | (prog_if & 0xff));
		cnt++;
	}
	/* libpci lists devices in no useful order (a dump comes out
	 * reversed): sort by address for stable reports. */
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_bdf);
	*out = v;
	*n = cnt;
	v = NULL;
out:
	if (a) {
		/* pci_cleanup() may report errors too; never jump into a dead frame. */
		if (!setjmp(jb))
			pci_cleanup(a);
	}
	scan_jmp = prev;
	free(v);
	return ret;
}
