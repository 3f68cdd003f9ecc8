"""`lpu chips` output, checked against lines worked out by hand from isa/chips/*.toml."""

from __future__ import annotations

from cli_helpers import lines


def test_chips_list(lpu) -> None:
    r = lpu("chips")
    assert r.exit_code == 0 and r.stderr == ""
    out = lines(r.stdout)
    assert out[0].split() == ["chip", "title", "clock", "SRAM", "SRAM", "B/W", "int8", "peak"]
    # lp30: 156 MEM x 2 x 5120 x 320 B = 511,180,800 B; 156 x 320 x 2 x 1.5e9 = 149.76 TB/s;
    #       4 planes x 320 x 320 x 2 x 1.5e9 = 1.2288e15.  Title column: 34 wide (tsp-v1's).
    # tsp-v1: 88 x 2 x 4096 x 320 = 230,686,720 B; 88 x 320 x 2 x 9e8 = 50.688 TB/s;
    #       4 x 320 x 320 x 2 x 9e8 = 737.28e12
    assert out[2:4] == [
        "lp30 *   Groq 3 LPU (LP30)                    1.5 GHz   511.2 MB   149.8 TB/s   1.229 Pops/s",  # noqa: E501
        "tsp-v1   GroqChip 1 (TSP, first generation)   900 MHz   230.7 MB   50.69 TB/s   737.3 Tops/s",  # noqa: E501
    ]
    assert out[-1] == "* the default chip. `lpu chips NAME` shows a preset in full."


def test_chip_detail_tsp_v1(lpu) -> None:
    r = lpu("chips", "tsp-v1")
    assert r.exit_code == 0
    out = lines(r.stdout)
    assert out[0] == "tsp-v1: GroqChip 1 (TSP, first generation)"
    # params: name column 25 wide ("mem_slices_per_hemisphere"), value 12 ("0, 5, 10, 15")
    assert ("mem_slices_per_hemisphere   44             published   "
            "ISCA 2020: 88 MEM slices, 44 per hemisphere") in out
    for golden in [
        "clock_hz                    900 MHz        published   ISCA 2020 'Think Fast'; GroqFlow's latency",  # noqa: E501
        "vxm_large_alus              0, 5, 10, 15   inferred    ISCA 2020 says only some ALUs do exp/rsqrt;",  # noqa: E501
        "c2c_link_latency            200 cycles     inferred    not published; ~220 ns one hop at 900 MHz",  # noqa: E501
    ]:
        assert golden in out
    # derived: value column as wide as "230,686,720 B = 230.7 MB (220 MiB)" (34)
    for start in [
        "SRAM capacity        230,686,720 B = 230.7 MB (220 MiB)   88 MEM slices x 2 banks",
        "SRAM bandwidth       50.69 TB/s                           88 MEM slices x 320 B x 2",
        "C2C bandwidth        480 GB/s                             16 links x 30 GB/s",
    ]:
        assert any(line.startswith(start) for line in out), start
    # layout: C2C, MXM x2, SXM x2 at 0..2; 44 MEM W; 16 VXM ALUs at 47; mirrored: 95 positions,
    # 1 + 2 + 2 + 44 + 16 + 44 + 2 + 2 + 1 = 114 queues
    i = out.index("Slice layout, west to east (95 positions, 114 queues)")
    assert out[i + 1].split() == ["position", "kind", "queues"]
    assert out[i + 3 : i + 12] == [
        "0          C2C    C2C_W",
        "1          MXM    MXM_W0, MXM_W1",
        "2          SXM    SXM_W0, SXM_W1",
        "3..46      MEM    MEM_W43 .. MEM_W0 (44)",
        "47         VXM    VXM0 .. VXM15 (16); large ALUs: VXM0, VXM5, VXM10, VXM15",
        "48..91     MEM    MEM_E0 .. MEM_E43 (44)",
        "92         SXM    SXM_E0, SXM_E1",
        "93         MXM    MXM_E0, MXM_E1",
        "94         C2C    C2C_E",
    ]
    assert out[-1] == "Latency overrides of isa/lpu.toml: none"


def test_chip_detail_lp30_is_marked_default(lpu) -> None:
    out = lines(lpu("chips", "lp30").stdout)
    assert out[0] == "lp30: Groq 3 LPU (LP30) (the default chip)"
    assert "Slice layout, west to east (163 positions, 182 queues)" in out
    assert "3..80      MEM    MEM_W77 .. MEM_W0 (78)" in out
    start = "SRAM capacity        511,180,800 B = 511.2 MB (487.5 MiB)"
    assert any(line.startswith(start) for line in out)


def test_chip_every_param_listed_with_status(lpu) -> None:
    out = lines(lpu("chips", "lp30").stdout)
    start = out.index("Parameters") + 3
    block = out[start : out.index("", start)]
    rows = [line.split() for line in block if not line.startswith(" ")]  # skip wrapped sources
    names = [r[0] for r in rows]
    # lp30.toml: lanes and c2c_links_per_edge, c2c_link_bytes_per_s published, the rest inferred
    published = {"lanes", "c2c_links_per_edge", "c2c_link_bytes_per_s"}
    for r in rows:
        assert ("published" if r[0] in published else "inferred") in r
    # the 20 params of lp30.toml, in file order
    assert names == [
        "clock_hz", "lanes", "superlane_lanes", "streams_per_direction",
        "mem_slices_per_hemisphere", "mem_banks", "mem_addresses_per_bank",
        "mxm_planes_per_hemisphere", "mxm_rows", "mxm_cols", "mxm_fp16_fraction",
        "mxm_load_streams", "mxm_fp16_planes",
        "mxm_accumulators", "vxm_alus", "vxm_large_alus", "sxm_units_per_hemisphere",
        "c2c_links_per_edge", "c2c_link_bytes_per_s", "c2c_link_latency",
    ]


def test_chips_unknown_name(lpu) -> None:
    r = lpu("chips", "lp31")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr == "error: unknown chip 'lp31'\nhint: valid chips: lp30, tsp-v1\n"
