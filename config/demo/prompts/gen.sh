#!/bin/sh
# Regenerates the demo prompts embedded in hotline (config/demo/prompts/*.wav).
#
# Every prompt is an 8 kHz, mono, 16-bit PCM WAV file: the format telephone audio
# (G.711) is made from, so the daemon converts nothing at call time.
#
# Needs espeak-ng (speech) and sox (conversion and the music on hold):
#     apt-get install espeak-ng sox
#
# Re-voice the prompts by changing VOICE or SPEED, for example:
#     VOICE=en-gb SPEED=140 ./gen.sh
# List the voices with: espeak-ng --voices=en
#
# To use your own recordings instead, put NAME.wav files in any directory and
# point [prompts] dir at it in hotline.toml. hotline converts 8/16-bit PCM, µ-law
# and A-law WAVs, mono or stereo, at 8000-48000 Hz when it loads them; to convert
# ahead of time (or from another format) use:
#     sox input.wav -r 8000 -c 1 -b 16 -e signed-integer NAME.wav
set -eu

cd "$(dirname "$0")"

VOICE=${VOICE:-en-us}
SPEED=${SPEED:-150}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# to_telephone converts any audio file to the prompt format: 8 kHz mono 16-bit,
# peak at -3 dBFS, with a short silence at both ends so the first syllable is not
# clipped while the RTP stream settles.
to_telephone() {
	sox "$1" -r 8000 -c 1 -b 16 -e signed-integer "$2" \
		highpass 200 lowpass 3400 norm -3 pad 0.15 0.25
}

say() {
	name=$1
	text=$2
	espeak-ng -v "$VOICE" -s "$SPEED" -w "$tmp/$name.wav" "$text"
	to_telephone "$tmp/$name.wav" "$name.wav"
	echo "$name.wav: $text"
}

say welcome "Welcome to the hotline."
say menu "For sales, press 1. For support, press 2."
say invalid "Sorry, that is not a valid choice."
say goodbye "Goodbye."

# Music on hold: a slow plucked melody over a soft sine pad, about 9.6 s long.
# It starts and ends on the same chord with short fades so it loops without a
# click. Kept quiet (-18 dBFS peak): callers listen to it for minutes.
melody="C4 E4 G4 E4 A4 G4 E4 D4 C4 E4 G4 C5 A4 G4 E4 G4"
bass="C3 C3 A2 A2 F2 F2 G2 G2"
i=0
for note in $melody; do
	sox -n -r 8000 -c 1 -b 16 "$tmp/m$(printf %02d $i).wav" \
		synth 0.6 pluck "$note" fade q 0.01 0.6 0.3
	i=$((i + 1))
done
i=0
for note in $bass; do
	sox -n -r 8000 -c 1 -b 16 "$tmp/b$(printf %02d $i).wav" \
		synth 1.2 sine "$note" fade h 0.3 1.2 0.5
	i=$((i + 1))
done
sox "$tmp"/m??.wav "$tmp/melody.wav"
sox "$tmp"/b??.wav "$tmp/bass.wav"
sox -m -v 1.0 "$tmp/melody.wav" -v 0.5 "$tmp/bass.wav" \
	-r 8000 -c 1 -b 16 -e signed-integer moh.wav \
	lowpass 3000 norm -18 fade t 0.05 -0 0.05
echo "moh.wav: music on hold"
