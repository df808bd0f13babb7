/*
 * libmbus throughput on a file of frames, for benches/bench_codec.py (meterbench's own harness,
 * built against a libmbus source tree that is not part of this repository).
 *
 * Input: one frame per line as hex. For each round and frame it does what libmbus's
 * test/mbus_parse_hex does: mbus_parse + mbus_frame_data_parse (records split, no values), then
 * mbus_frame_data_xml (values and units formatted as text). Frames libmbus rejects are left out.
 *
 * Output (one line): "frames=N rounds=R parse_s=T1 xml_s=T2 accepted=i,j,..." with the best
 * round CPU times in s and the 0-based input lines libmbus decoded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbus/mbus-protocol.h>

#define MAX_FRAMES 512

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: robust to machine load */
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int unhex(const char *line, unsigned char *out, int cap) {
    int n = 0;
    while (*line && n < cap) {
        while (*line == ' ' || *line == '\t') line++;
        if (!line[0] || !line[1] || line[0] == '\n') break;
        unsigned int byte;
        if (sscanf(line, "%2x", &byte) != 1) break;
        out[n++] = (unsigned char)byte;
        line += 2;
    }
    return n;
}

static int decode(unsigned char *buf, int len, int xml) {
    mbus_frame frame;
    mbus_frame_data data;
    memset(&frame, 0, sizeof(frame));
    memset(&data, 0, sizeof(data));
    if (mbus_parse(&frame, buf, len) != 0) return -1;
    if (mbus_frame_data_parse(&frame, &data) != 0) return -1;
    if (xml) {
        char *text = mbus_frame_data_xml(&data);
        if (!text) return -1;
        free(text);
    }
    if (data.data_var.record) mbus_data_record_free(data.data_var.record);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FRAMES.hex ROUNDS\n", argv[0]);
        return 2;
    }
    static unsigned char frames[MAX_FRAMES][300];
    static int lengths[MAX_FRAMES], lineno[MAX_FRAMES];
    int count = 0, line_index = 0, rounds = atoi(argv[2]);
    char line[2048];
    FILE *f = fopen(argv[1], "r");
    if (!f) return 2;
    while (count < MAX_FRAMES && fgets(line, sizeof line, f)) {
        int n = unhex(line, frames[count], 300);
        if (n > 0 && decode(frames[count], n, 1) == 0) {
            lineno[count] = line_index;
            lengths[count++] = n;
        }
        line_index++;
    }
    fclose(f);
    double best[2] = {1e9, 1e9};
    for (int xml = 0; xml < 2; xml++) {
        for (int r = 0; r < rounds; r++) {
            double t = now();
            for (int i = 0; i < count; i++) decode(frames[i], lengths[i], xml);
            t = now() - t;
            if (t < best[xml]) best[xml] = t;
        }
    }
    printf("frames=%d rounds=%d parse_s=%.9f xml_s=%.9f accepted=", count, rounds, best[0],
           best[1]);
    for (int i = 0; i < count; i++) printf(i ? ",%d" : "%d", lineno[i]);
    printf("\n");
    return 0;
}
