/* ARM kernel files: the arm64 Image header and the 32-bit zImage magic
 * (Linux Documentation/arch/arm64/booting.rst and arm/booting.rst), and
 * the files people pass by mistake.  See linux_arm.h. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "core/le.h"
#include "cellmgr/linux_arm.h"

#define IMG_TEXT_OFFSET 8u
#define IMG_IMAGE_SIZE  16u
#define IMG_FLAGS       24u
#define IMG_MAGIC       0x38u     /* "ARM\x64" */
#define IMG_HDR_LEN     64u
#define ZIMG_MAGIC_OFF  0x24u
#define ZIMG_MAGIC      0x016f2818u
#define ZBOOT_TYPE      4u        /* "zimg" after "MZ\0\0" */
#define ZBOOT_PAYLOAD   8u
#define ZBOOT_SIZE      12u
#define ZBOOT_COMP      24u

bool cm_arm_cell_aarch32(const struct cm_config *cfg)
{
	/* The flag exists from revision 13 on. */
	return cfg->arch == CM_ARCH_ARM ||
	       (cfg->arch == CM_ARCH_ARM64 && cfg->revision >= 13 &&
		(cfg->cell.flags & CM_CELL_AARCH32));
}

static const char *compression(const uint8_t *k, size_t len)
{
	if (len >= 2 && k[0] == 0x1f && (k[1] == 0x8b || k[1] == 0x9e))
		return "gzip";
	if (len >= 6 && !memcmp(k, "\xfd" "7zXZ\0", 6))
		return "xz";
	if (len >= 4 && !memcmp(k, "\x28\xb5\x2f\xfd", 4))
		return "zstd";
	if (len >= 3 && !memcmp(k, "BZh", 3))
		return "bzip2";
	if (len >= 4 && (!memcmp(k, "\x04\x22\x4d\x18", 4) || !memcmp(k, "\x02\x21\x4c\x18", 4)))
		return "lz4";
	if (len >= 3 && !memcmp(k, "\x5d\x00\x00", 3))
		return "lzma";
	if (len >= 4 && !memcmp(k, "\x89LZO", 4))
		return "lzo";
	return NULL;
}

/* Files that are not what this cell boots: say what they are and what to
 * pass instead.  Returns -EINVAL with err set, or 0 if none matched. */
static int foreign(const uint8_t *k, size_t len, bool aarch32, const char *name,
		   struct cm_err *err)
{
	const char *want = aarch32 ? "arch/arm/boot/zImage" : "arch/arm64/boot/Image";
	const char *c = compression(k, len);

	if (c) {
		cm_err_set(err, "%s is %s-compressed, not a bootable %s", name, c, aarch32 ? "zImage" :
			   "arm64 Image");
		if (!strcmp(c, "gzip") && !aarch32)
			cm_err_hint(err, "pass the uncompressed Image: `gunzip -c %s > Image` (upstream's "
				    "tool unpacks Image.gz itself and prints Image-unzipped)", name);
		else
			cm_err_hint(err, "pass the uncompressed %s from the kernel build", want);
		return -EINVAL;
	}
	if (len >= ZBOOT_COMP + 1 && k[0] == 'M' && k[1] == 'Z' &&
	    !memcmp(k + ZBOOT_TYPE, "zimg", 4)) {
		char comp[9] = "";

		memcpy(comp, k + ZBOOT_COMP, len - ZBOOT_COMP < 8 ? len - ZBOOT_COMP : 8);
		for (char *p = comp; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				*p = '?';
		cm_err_set(err, "%s is an EFI zboot image (vmlinuz.efi, %s payload), which only EFI "
			   "firmware can start", name, comp[0] ? comp : "unknown");
		cm_err_hint(err, "pass arch/arm64/boot/Image from the same build; the compressed Image "
			    "is at offset 0x%x in the file (%u bytes)", le32(k, ZBOOT_PAYLOAD),
			    le32(k, ZBOOT_SIZE));
		return -EINVAL;
	}
	if (len >= 4 && !memcmp(k, "\x7f" "ELF", 4)) {
		cm_err_set(err, "%s is an ELF file (vmlinux?), not a bootable kernel image", name);
		cm_err_hint(err, "pass %s", want);
		return -EINVAL;
	}
	if (len >= 0x206 && !memcmp(k + 0x202, "HdrS", 4)) {
		cm_err_set(err, "%s is an x86 bzImage; this cell is %s", name, aarch32 ? "32-bit ARM" :
			   "arm64");
		return -EINVAL;
	}
	return 0;
}

static bool is_image(const uint8_t *k, size_t len)
{
	return len >= IMG_HDR_LEN && !memcmp(k + IMG_MAGIC, "ARM\x64", 4);
}

static bool is_zimage(const uint8_t *k, size_t len)
{
	return len >= ZIMG_MAGIC_OFF + 4 && le32(k, ZIMG_MAGIC_OFF) == ZIMG_MAGIC;
}

int cm_arm_kernel_parse(const uint8_t *k, size_t len, bool aarch32, const char *name,
			struct cm_arm_kernel *out, struct cm_err *err)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->aarch32 = aarch32;
	/* The magic decides first: an Image's first bytes are code. */
	if (aarch32 && is_zimage(k, len))
		return 0;
	if (!aarch32 && is_image(k, len))
		goto image;
	ret = foreign(k, len, aarch32, name, err);
	if (ret < 0)
		return ret;
	if (aarch32) {
		cm_err_set(err, is_image(k, len) ?
			   "%s is an arm64 Image, but the cell runs 32-bit ARM (AARCH32)" :
			   "%s is not a 32-bit ARM zImage (no magic 0x016f2818 at 0x24)", name);
		cm_err_hint(err, "pass arch/arm/boot/zImage");
	} else if (is_zimage(k, len)) {
		cm_err_set(err, "%s is a 32-bit ARM zImage, but the cell is not AARCH32", name);
		cm_err_hint(err, "for 32-bit Linux the cell config needs JAILHOUSE_CELL_AARCH32 in "
			    ".flags; otherwise pass arch/arm64/boot/Image");
	} else {
		cm_err_set(err, len < IMG_HDR_LEN ? "%s is too small for an arm64 Image header" :
			   "%s is not an arm64 Image (no \"ARM\\x64\" magic at 0x38)", name);
		cm_err_hint(err, "pass arch/arm64/boot/Image");
	}
	return -EINVAL;
image:
	out->text_offset = le64(k, IMG_TEXT_OFFSET);
	out->image_size = le64(k, IMG_IMAGE_SIZE);
	out->flags = le64(k, IMG_FLAGS);
	/* The kernel sits text_offset above a 2 MiB boundary: anything else
	 * is not a header (and would overflow the address arithmetic). */
	if (out->text_offset >= CM_ARM64_ALIGN) {
		cm_err_set(err, "%s: arm64 Image header has text_offset 0x%" PRIx64 ", not below 2 MiB",
			   name, out->text_offset);
		return -EINVAL;
	}
	if (out->image_size > (1ull << 40)) {
		cm_err_set(err, "%s: arm64 Image header has image_size 0x%" PRIx64, name, out->image_size);
		return -EINVAL;
	}
	return 0;
}
